#!/usr/bin/env bash
# The clone tier: runs part of the suite from a copy of the repository's tracked files in an empty scratch
# directory (nothing beside it, as after a fresh `git clone`), so a test that reads a file outside the
# repository, or a file nobody committed, fails here even though it passes in the developer's checkout.
# node_modules is hard-linked from this checkout (same locked versions; seconds instead of a reinstall).
# In the copy: the repository-paths lint, the unit tier, and `helm lint --strict` of the chart with its
# default and the guide's values. Usage: run.sh <results prefix> → <prefix>.json (jest) and <prefix>.log
# (ends with "Checks: N passed, N failed"); exits non-zero if anything failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
[ $# = 1 ] || {
  echo "usage: $0 <results prefix>" >&2
  exit 2
}
out=$(realpath -m "$1")
mkdir -p "$(dirname "$out")"
rm -f "$out.json" "$out.log"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
copy="$scratch/teleport-plugin-mattermost"
mkdir "$copy"

# Tracked files as they are in the working tree (a deleted one is left out, as a commit would leave it).
(cd "$root" && git ls-files -z --cached | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$copy"
# A repository of its own, as a clone has (the paths lint lists files with git).
git -C "$copy" init -q && git -C "$copy" add -A
echo "[clone] $(git -C "$copy" ls-files | wc -l) tracked files copied to $copy"
cp -al "$root/node_modules" "$copy/node_modules" 2>/dev/null || cp -a "$root/node_modules" "$copy/node_modules"

TOOLS_DIR="${TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/teleport-plugin-mattermost/tools}"
helm="$TOOLS_DIR/bin/helm"
chart="$copy/charts/teleport-plugin-mattermost"
passed=0
failed=0
check() {
  local what=$1
  shift
  echo "== [clone] $what"
  if (cd "$copy" && "$@"); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED: [clone] $what"
  fi
}
check "paths stay inside the repository" node test/lint/repo-paths.mjs
check "helm lint --strict (default values)" "$helm" lint --strict "$chart"
check "helm lint --strict (the guide's values)" \
  "$helm" lint --strict "$chart" --values "$copy/test/fixtures/guide/teleport-mattermost-helm.yaml"
echo "Checks: $passed passed, $failed failed" | tee "$out.log"

echo "== [clone] unit tier"
(cd "$copy" && PATH="$copy/node_modules/.bin:$PATH" node --experimental-vm-modules node_modules/jest/bin/jest.js \
  --selectProjects unit --json --outputFile="$out.json")
jest_rc=$?
[ "$failed" = 0 ] && [ "$jest_rc" = 0 ]
