#!/usr/bin/env bash
# Builds the real peers the tests run against (etcd, kube-apiserver, kube-controller-manager, helm,
# helm-unittest, and kubectl if the machine has none)
# from the Go module proxy into a cache outside the repository. Anything already present at the pinned
# version is skipped, so a second run takes seconds. Usage: tools.sh [all|etcd|kube|helm] (default all).
# Go's download/compile chatter goes to $TOOLS_DIR/logs/<tool>.log; the tail is printed when a build fails.
set -euo pipefail
shopt -s inherit_errexit
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

TOOLS_DIR="${TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/teleport-plugin-mattermost/tools}"
export GOBIN="$TOOLS_DIR/bin" GOCACHE="$TOOLS_DIR/cache/build" GOMODCACHE="$TOOLS_DIR/cache/mod" GOFLAGS=-mod=mod
export CGO_ENABLED=0
mkdir -p "$GOBIN" "$TOOLS_DIR/src" "$TOOLS_DIR/stamps" "$TOOLS_DIR/logs"
command -v go >/dev/null 2>&1 || {
  echo "[tools] the Go toolchain is required (go on PATH) to build the Kubernetes test peers" >&2
  exit 1
}

log() { printf '[tools] %s\n' "$*" >&2; }
have() { [ -x "$GOBIN/$1" ] && [ "$(cat "$TOOLS_DIR/stamps/$1" 2>/dev/null)" = "$2" ]; }
stamp() { printf '%s' "$2" >"$TOOLS_DIR/stamps/$1"; }

# build <name> <version> <function> [args]: runs the build in a subshell that is not part of a tested
# command (`if`, `&&`, `||` switch `set -e` off, even in subshells), logs to a file, reports the time.
build() {
  local name=$1 version=$2 fn=$3
  shift 3
  local logfile="$TOOLS_DIR/logs/${name// /}.log" t0=$SECONDS rc
  log "building $name v$version (first time only; log: $logfile)…"
  set +e
  ("$fn" "$@") >"$logfile" 2>&1
  rc=$?
  set -e
  if [ "$rc" = 0 ]; then
    log "built $name v$version in $((SECONDS - t0))s"
  else
    log "FAILED to build $name v$version after $((SECONDS - t0))s; last lines of $logfile:"
    tail -n 25 "$logfile" >&2
    exit 1
  fi
}

# Wrapper modules: a throw-away main module may carry replace directives that `go install` refuses.
wrapper() {
  mkdir -p "$TOOLS_DIR/src/$1"
  cd "$TOOLS_DIR/src/$1"
  [ -f go.mod ] || go mod init "local/$1"
}
gomod_of() { go mod download -json "$1" | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0,"utf8")).GoMod)'; }
# Copies the non-local replace/exclude directives of a dependency's go.mod into the wrapper's go.mod.
copy_directives() {
  go mod edit -json "$1" | node -e '
    const m = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const out = [];
    for (const r of m.Replace || []) {
      if (r.New.Path.startsWith(".")) continue;
      out.push("-replace=" + r.Old.Path + (r.Old.Version ? "@" + r.Old.Version : "") + "=" +
               r.New.Path + (r.New.Version ? "@" + r.New.Version : ""));
    }
    for (const e of m.Exclude || []) out.push("-exclude=" + e.Path + "@" + e.Version);
    process.stdout.write(out.join("\n"));
  ' | xargs -r go mod edit
}

build_etcd() {
  wrapper etcd
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$GOBIN/etcd" go.etcd.io/etcd/server/v3
}

# k8s.io/kubernetes maps its staging modules to ./staging (not in the module zip): map each to its
# published v0.<minor>.<patch> in a wrapper module. Version ldflags make the server report its real version.
build_kube() {
  local minor staging kmod m
  minor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
  staging="v0.${KUBERNETES_VERSION#1.}"
  wrapper "k8s-$KUBERNETES_VERSION"
  kmod=$(gomod_of "k8s.io/kubernetes@v$KUBERNETES_VERSION")
  for m in $(sed -n 's|^[[:space:]]*\(k8s.io/[^ ]*\) => \./staging/.*|\1|p' "$kmod"); do
    go mod edit "-replace=$m=$m@$staging"
  done
  go mod edit "-require=k8s.io/kubernetes@v$KUBERNETES_VERSION"
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=v$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  # kube-controller-manager shares nearly all packages with the apiserver: it gives the tests garbage
  # collection (ownerReference cascades) and Deployment -> ReplicaSet for a few minutes more of building.
  local pkgs=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)
  [ "${1:-}" = with-kubectl ] && pkgs+=(k8s.io/kubernetes/cmd/kubectl)
  go build -trimpath -ldflags "$ld" -o "$GOBIN/" "${pkgs[@]}"
}

# helm's default .Capabilities.KubeVersion comes from ldflags (1.20 otherwise); derive it from the
# client-go version the binary links, as helm's release Makefile does.
build_helm() {
  local cg minor
  go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  cg=$(go version -m "$GOBIN/helm" | awk '$2=="k8s.io/client-go"{print $3}')
  minor=$(echo "$cg" | cut -d. -f2)
  go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
}

# helm-unittest >= 1.0.2 carries a replace directive, so it is built from a wrapper module.
# (Here sum.golang.org has no entry for 1.0.1, and the proxy refuses 1.0.2 and 1.1.0; 1.0.3 resolves.)
build_unittest() {
  local mod=github.com/helm-unittest/helm-unittest
  wrapper "helm-unittest-$HELM_UNITTEST_VERSION"
  local gomod
  gomod=$(gomod_of "$mod@v$HELM_UNITTEST_VERSION")
  copy_directives "$gomod"
  go get "$mod/cmd/helm-unittest@v$HELM_UNITTEST_VERSION"
  local minor
  minor=$(go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)
  go build -trimpath -o "$GOBIN/helm-unittest" -ldflags "-s -w -X $mod/internal/build.version=$HELM_UNITTEST_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" \
    "$mod/cmd/helm-unittest"
}

total0=$SECONDS
only="${1:-all}"
case "$only" in all | etcd | kube | helm) ;; *)
  echo "usage: $0 [all|etcd|kube|helm]" >&2
  exit 2
  ;;
esac
if [ "$only" = all ] || [ "$only" = etcd ]; then
  if ! have etcd "$ETCD_VERSION"; then
    build etcd "$ETCD_VERSION" build_etcd
    stamp etcd "$ETCD_VERSION"
  fi
fi
if [ "$only" = all ] || [ "$only" = kube ]; then
  kubectl_arg=""
  if ! command -v kubectl >/dev/null 2>&1 || [ -n "${BUILD_KUBECTL:-}" ]; then kubectl_arg=with-kubectl; fi
  if ! have kube-apiserver "$KUBERNETES_VERSION" || ! have kube-controller-manager "$KUBERNETES_VERSION" ||
    { [ -n "$kubectl_arg" ] && ! have kubectl "$KUBERNETES_VERSION"; }; then
    build "kube-apiserver + kube-controller-manager${kubectl_arg:+ + kubectl}" "$KUBERNETES_VERSION" build_kube $kubectl_arg
    stamp kube-apiserver "$KUBERNETES_VERSION"
    stamp kube-controller-manager "$KUBERNETES_VERSION"
    if [ -n "$kubectl_arg" ]; then stamp kubectl "$KUBERNETES_VERSION"; fi
  fi
fi
if [ "$only" = all ] || [ "$only" = helm ]; then
  if ! have helm "$HELM_VERSION"; then
    build helm "$HELM_VERSION" build_helm
    stamp helm "$HELM_VERSION"
  fi
  if ! have helm-unittest "$HELM_UNITTEST_VERSION"; then
    build helm-unittest "$HELM_UNITTEST_VERSION" build_unittest
    stamp helm-unittest "$HELM_UNITTEST_VERSION"
  fi
fi
log "tools ready in $GOBIN ($((SECONDS - total0))s)"
