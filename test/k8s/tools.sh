#!/usr/bin/env bash
# Builds the real peers the tests run against (etcd, kube-apiserver, helm, helm-unittest, kubectl if missing)
# from the Go module proxy into a cache outside the repository. Anything already present at the pinned
# version is skipped, so a second run takes seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

TOOLS_DIR="${TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/teleport-plugin-mattermost/tools}"
export GOBIN="$TOOLS_DIR/bin" GOCACHE="$TOOLS_DIR/cache/build" GOMODCACHE="$TOOLS_DIR/cache/mod" GOFLAGS=-mod=mod
export CGO_ENABLED=0
mkdir -p "$GOBIN" "$TOOLS_DIR/src" "$TOOLS_DIR/stamps"

log() { printf '[tools] %s\n' "$*" >&2; }
have() { [ -x "$GOBIN/$1" ] && [ "$(cat "$TOOLS_DIR/stamps/$1" 2>/dev/null)" = "$2" ]; }
stamp() { printf '%s' "$2" >"$TOOLS_DIR/stamps/$1"; }
timed() {
  local name=$1; shift
  local t0=$SECONDS
  log "building $name (slow the first time)…"
  "$@"
  log "built $name in $((SECONDS - t0))s"
}
# Wrapper modules: a throw-away main module may carry replace directives that `go install` refuses.
wrapper() { mkdir -p "$TOOLS_DIR/src/$1"; cd "$TOOLS_DIR/src/$1"; [ -f go.mod ] || go mod init "local/$1" >/dev/null 2>&1; }
gomod_of() { go mod download -json "$1" | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0,"utf8")).GoMod)'; }

build_etcd() {
  wrapper etcd
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null 2>&1
  go build -trimpath -ldflags "-s -w" -o "$GOBIN/etcd" go.etcd.io/etcd/server/v3
}

build_kube() {
  local minor; minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  local staging="v0.${KUBERNETES_VERSION#1.}"
  wrapper "k8s-$KUBERNETES_VERSION"
  local kmod; kmod=$(gomod_of "k8s.io/kubernetes@v$KUBERNETES_VERSION")
  for m in $(sed -n 's|^[[:space:]]*\(k8s.io/[^ ]*\) => \./staging/.*|\1|p' "$kmod"); do
    go mod edit "-replace=$m=$m@$staging"
  done
  go mod edit "-require=k8s.io/kubernetes@v$KUBERNETES_VERSION"
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=v$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  local pkgs=(k8s.io/kubernetes/cmd/kube-apiserver)
  [ "${1:-}" = with-kubectl ] && pkgs+=(k8s.io/kubernetes/cmd/kubectl)
  go build -trimpath -ldflags "$ld" -o "$GOBIN/" "${pkgs[@]}"
}

build_helm() {
  local cg minor
  go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  # helm's default .Capabilities.KubeVersion comes from ldflags; derive it from the client-go it links.
  cg=$(go version -m "$GOBIN/helm" | awk '$2=="k8s.io/client-go"{print $3}')
  minor=$(echo "$cg" | cut -d. -f2)
  go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
}

build_unittest() {
  go install -trimpath -ldflags "-s -w -X github.com/helm-unittest/helm-unittest/internal/build.version=$HELM_UNITTEST_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${KUBERNETES_VERSION#1.}" \
    "github.com/helm-unittest/helm-unittest/cmd/helm-unittest@v$HELM_UNITTEST_VERSION"
}

total0=$SECONDS
only="${1:-all}"
if [ "$only" = all ] || [ "$only" = etcd ]; then
  have etcd "$ETCD_VERSION" || { (timed "etcd v$ETCD_VERSION" build_etcd) && stamp etcd "$ETCD_VERSION"; }
fi
if [ "$only" = all ] || [ "$only" = kube ]; then
  kubectl_arg=""
  if ! command -v kubectl >/dev/null 2>&1 || [ -n "${BUILD_KUBECTL:-}" ]; then kubectl_arg=with-kubectl; fi
  if ! have kube-apiserver "$KUBERNETES_VERSION" || { [ -n "$kubectl_arg" ] && ! have kubectl "$KUBERNETES_VERSION"; }; then
    (timed "kube-apiserver v$KUBERNETES_VERSION ${kubectl_arg}" build_kube $kubectl_arg)
    stamp kube-apiserver "$KUBERNETES_VERSION"
    [ -n "$kubectl_arg" ] && stamp kubectl "$KUBERNETES_VERSION"
  fi
fi
if [ "$only" = all ] || [ "$only" = helm ]; then
  have helm "$HELM_VERSION" || { (timed "helm v$HELM_VERSION" build_helm) && stamp helm "$HELM_VERSION"; }
  have helm-unittest "$HELM_UNITTEST_VERSION" || { (timed "helm-unittest v$HELM_UNITTEST_VERSION" build_unittest) && stamp helm-unittest "$HELM_UNITTEST_VERSION"; }
fi
log "tools ready in $GOBIN ($((SECONDS - total0))s)"
