#!/usr/bin/env bash
# Chart checks with the cached helm and helm-unittest (built by `make tools`): the CRD copy matches its
# single source, `helm lint --strict` with the default and the upstream guide's values, a render of the guide's
# values, every values file in tests/values/rejected/ refused by both install and lint, then every
# helm-unittest suite in the chart's tests/. Every check runs even after one failed; the
# last line counts them ("Checks: N passed, N failed", summed by test/summary.mjs with helm-unittest's own
# "Tests:" line) and the exit code is non-zero if anything failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
chart="$root/charts/teleport-plugin-mattermost"
guide_values="$root/test/fixtures/guide/teleport-mattermost-helm.yaml"
# Upstream-style values with tbot (tbot.enabled, an empty teleport.address, crd.create).
tbot_values="$chart/tests/values/tbot-upstream.yaml"
TOOLS_DIR="${TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/teleport-plugin-mattermost/tools}"
helm="$TOOLS_DIR/bin/helm"
unittest="$TOOLS_DIR/bin/helm-unittest"
for tool in "$helm" "$unittest"; do
  [ -x "$tool" ] || {
    echo "missing $tool: run \`make tools\` first" >&2
    exit 1
  }
done

passed=0
failed=0
# check <description> <command…>: runs one check, counts it, prints FAILED with the description if it fails.
check() {
  local what=$1
  shift
  echo "== $what"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED: $what"
  fi
}

check "CRD copy matches crds/" bash "$root/test/chart/sync-crds.sh" --check
check "helm lint --strict (default values)" "$helm" lint --strict "$chart"
check "helm lint --strict (the guide's values)" "$helm" lint --strict "$chart" --values "$guide_values"
check "helm lint --strict (upstream-style tbot values)" "$helm" lint --strict "$chart" --values "$tbot_values"
render() { "$helm" template teleport-plugin-mattermost "$chart" --namespace teleport "$@" >/dev/null; }
check "helm template (the guide's values)" render --values "$guide_values"
check "helm template (upstream-style tbot values)" render --values "$tbot_values"

# rejected <values file>: install (helm template validates and renders as install does) and helm lint --strict
# both refuse it, with the message on the file's first line ("# rejects: <message>") — so lint and install agree.
rejected() {
  local file=$1 expected out
  expected=$(sed -n '1s/^# rejects: //p' "$file")
  [ -n "$expected" ] || {
    echo "$file: first line must be '# rejects: <expected message>'"
    return 1
  }
  for command in "template teleport-plugin-mattermost" "lint --strict"; do
    # shellcheck disable=SC2086
    if out=$("$helm" $command "$chart" --namespace teleport --values "$file" 2>&1); then
      echo "helm $command accepted $file; expected: $expected"
      return 1
    fi
    grep -qF -- "$expected" <<<"$out" || {
      printf 'helm %s rejected %s without the expected message\n  expected: %s\n  got: %s\n' "$command" "$file" "$expected" "$out"
      return 1
    }
  done
}
for file in "$chart"/tests/values/rejected/*.yaml; do
  check "install and lint --strict reject $(basename "$file")" rejected "$file"
done
echo "Checks: $passed passed, $failed failed"

echo "== helm-unittest"
"$unittest" --color=false "$chart"
unittest_rc=$?
[ "$failed" = 0 ] && [ "$unittest_rc" = 0 ]
