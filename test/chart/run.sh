#!/usr/bin/env bash
# Chart checks with the cached helm and helm-unittest (built by `make tools`): the CRD copy matches its
# single source, `helm lint --strict` with the default and the upstream guide's values, a render of the guide's
# values, then every helm-unittest suite in the chart's tests/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
chart="$root/charts/teleport-plugin-mattermost"
guide_values="$root/test/fixtures/guide/teleport-mattermost-helm.yaml"
TOOLS_DIR="${TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/teleport-plugin-mattermost/tools}"
helm="$TOOLS_DIR/bin/helm"
unittest="$TOOLS_DIR/bin/helm-unittest"
for tool in "$helm" "$unittest"; do
  [ -x "$tool" ] || {
    echo "missing $tool: run \`make tools\` first" >&2
    exit 1
  }
done

echo "== CRD copy"
bash "$root/test/chart/sync-crds.sh" --check

echo "== helm lint --strict"
"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" --values "$guide_values"
"$helm" template teleport-plugin-mattermost "$chart" --namespace teleport --values "$guide_values" >/dev/null

echo "== helm-unittest"
"$unittest" --color=false "$chart"
