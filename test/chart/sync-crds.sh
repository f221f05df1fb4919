#!/usr/bin/env bash
# The CRD has one source, crds/mattermostaccessplugins.yaml at the repository root. Helm only installs CRDs
# from a chart's own crds/ directory, so the chart carries a byte-identical copy.
#   sync-crds.sh          copy the source into the chart
#   sync-crds.sh --check  fail (with the fix) when the copy differs from the source
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
src="$root/crds/mattermostaccessplugins.yaml"
dst="$root/charts/teleport-plugin-mattermost/crds/mattermostaccessplugins.yaml"
if [ "${1:-}" = --check ]; then
  if ! cmp -s "$src" "$dst"; then
    echo "chart CRD copy differs from crds/mattermostaccessplugins.yaml; run: bash test/chart/sync-crds.sh" >&2
    diff -u "$src" "$dst" | head -40 >&2 || true
    exit 1
  fi
  echo "chart CRD copy is identical to crds/mattermostaccessplugins.yaml"
else
  mkdir -p "$(dirname "$dst")"
  cp "$src" "$dst"
  echo "copied $src -> $dst"
fi
