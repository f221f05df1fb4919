#!/usr/bin/env bash
# How this project installs its npm packages: `npm ci`, exactly the versions in package-lock.json (make deps,
# the README and the Dockerfile all run it). npm runs on the machine's Node (often 20); the locked `node`
# package installs Node 24 into node_modules/.bin, which every make target then uses. npm's EBADENGINE
# warnings say that the machine's Node is not 24: expected before that install, so left out with a line
# saying why; every other message passes through.
#   npm-ci.sh          install (removes node_modules first, as npm ci does)
#   npm-ci.sh --check  only check that package-lock.json matches package.json (`npm ci --dry-run`)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# npm must not run on node_modules/.bin/node: `npm ci` deletes it while installing.
PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vx "$root/node_modules/.bin" | paste -sd: -)
export PATH

if [ "${1:-}" = --check ]; then
  if out=$(npm ci --dry-run --ignore-scripts --no-audit --no-fund --loglevel=error 2>&1); then
    echo "npm-ci: package-lock.json matches package.json (npm ci --dry-run)"
    exit 0
  fi
  printf '%s\n' "$out" | grep -v '^npm error *$' >&2
  echo "npm-ci: \`npm ci\` would reject package-lock.json: run \`npm install\` and commit package-lock.json" >&2
  exit 1
fi

running=$(node --version)
case $running in
  v24.*) ;;
  *) echo "npm-ci: npm runs on this machine's Node $running and installs Node 24 into node_modules/.bin;" \
    "its warnings that Node $running is not 24 (EBADENGINE) are expected here and left out" ;;
esac
{ npm ci --no-audit --no-fund "$@" 2>&1 1>&3 | sed '/EBADENGINE/d' >&2; } 3>&1
installed=$(node_modules/.bin/node --version)
case $installed in
  v24.*) echo "npm-ci: node_modules/.bin/node is $installed" ;;
  *)
    echo "npm-ci: node_modules/.bin/node is $installed, not Node 24: the \`node\` package's install script did not run" >&2
    exit 1
    ;;
esac
