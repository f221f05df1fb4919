#!/usr/bin/env bash
# Builds the real Mattermost server (Team Edition) the `mattermost-real` tier runs against, from the Go
# module proxy into the tools cache ($TOOLS_DIR, shared with test/k8s/tools.sh), and makes sure PostgreSQL
# is installed (Debian's postgresql-$POSTGRES_MAJOR; installed with apt-get when missing and running as root).
# A second run with the same pins does nothing. Build chatter goes to $TOOLS_DIR/logs/mattermost.log; its
# tail is printed when the build fails.
# Layout: $TOOLS_DIR/mattermost-<version>/{bin/mattermost,i18n,templates,fonts} (the server refuses to
# start without i18n/, which it looks for next to its bin/ folder).
set -euo pipefail
shopt -s inherit_errexit
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

TOOLS_DIR="${TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/teleport-plugin-mattermost/tools}"
export GOCACHE="$TOOLS_DIR/cache/build" GOMODCACHE="$TOOLS_DIR/cache/mod" GOFLAGS=-mod=mod
export CGO_ENABLED=0 GONOSUMDB=github.com/mattermost GOTOOLCHAIN=local
log() { printf '[tools] %s\n' "$*" >&2; }

mod=github.com/mattermost/mattermost/server/v8
public=github.com/mattermost/mattermost/server/public
dest="$TOOLS_DIR/mattermost-$MATTERMOST_SERVER_VERSION"
stampfile="$TOOLS_DIR/stamps/mattermost"
want="$MATTERMOST_SERVER_VERSION $MATTERMOST_PUBLIC_VERSION"
logfile="$TOOLS_DIR/logs/mattermost.log"

ensure_postgres() {
  [ -x "/usr/lib/postgresql/$POSTGRES_MAJOR/bin/initdb" ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "PostgreSQL $POSTGRES_MAJOR is missing (/usr/lib/postgresql/$POSTGRES_MAJOR/bin/initdb): install the Debian package postgresql-$POSTGRES_MAJOR"
    exit 1
  fi
  log "installing postgresql-$POSTGRES_MAJOR with apt-get…"
  # The package's own cluster is not used (the tier starts a private one); do not let it start.
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "postgresql-$POSTGRES_MAJOR" >/dev/null
}

# A throw-away main module whose go.mod/go.sum are the server's own (so every dependency stays at the
# version upstream tested), requiring the server itself and a newer server/public (see versions.env).
# `go install mod/cmd/mattermost@v` cannot work: it loads enterprise packages that are not published.
build_server() {
  local src="$TOOLS_DIR/src/mattermost-$MATTERMOST_SERVER_VERSION" info gomod dir
  rm -rf "$src" && mkdir -p "$src" && cd "$src"
  info=$(go mod download -json "$mod@$MATTERMOST_SERVER_VERSION")
  gomod=$(printf '%s' "$info" | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0,"utf8")).GoMod)')
  dir=$(printf '%s' "$info" | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0,"utf8")).Dir)')
  cp "$gomod" go.mod && chmod u+w go.mod
  cp "$dir/go.sum" go.sum && chmod u+w go.sum
  go mod edit -module local/mattermost-wrapper \
    "-require=$mod@$MATTERMOST_SERVER_VERSION" "-require=$public@$MATTERMOST_PUBLIC_VERSION"
  # Local replaces (../public and the like) point into upstream's source tree, which a module zip lacks.
  go mod edit -json | node -e '
    const m = JSON.parse(require("fs").readFileSync(0, "utf8"));
    for (const r of m.Replace || []) if (r.New.Path.startsWith(".")) console.log("-dropreplace=" + r.Old.Path);
  ' | xargs -r go mod edit
  mkdir -p "$dest.tmp/bin"
  go build -trimpath -ldflags "-s -w -X $public/model.BuildNumber=$MATTERMOST_SERVER_VERSION -X $public/model.BuildHash=${MATTERMOST_SERVER_VERSION##*-}" \
    -o "$dest.tmp/bin/mattermost" "$mod/cmd/mattermost"
  local d
  for d in i18n templates fonts; do
    cp -r "$dir/$d" "$dest.tmp/$d"
    chmod -R u+w "$dest.tmp/$d"
  done
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
}

t0=$SECONDS
ensure_postgres
if [ -x "$dest/bin/mattermost" ] && [ -d "$dest/i18n" ] && [ "$(cat "$stampfile" 2>/dev/null)" = "$want" ]; then
  log "mattermost ready in $dest ($((SECONDS - t0))s)"
  exit 0
fi
command -v go >/dev/null 2>&1 || {
  log "the Go toolchain is required (go on PATH) to build the real Mattermost test peer"
  exit 1
}
mkdir -p "$TOOLS_DIR/stamps" "$TOOLS_DIR/logs" "$TOOLS_DIR/src"
log "building mattermost $MATTERMOST_SERVER_VERSION (first time only, ~5-12 min; log: $logfile)…"
set +e
(build_server) >"$logfile" 2>&1
rc=$?
set -e
if [ "$rc" != 0 ]; then
  log "FAILED to build mattermost after $((SECONDS - t0))s; last lines of $logfile:"
  tail -n 25 "$logfile" >&2
  exit 1
fi
printf '%s' "$want" >"$stampfile"
log "built mattermost in $((SECONDS - t0))s: $dest"
