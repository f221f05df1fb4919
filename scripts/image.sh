#!/usr/bin/env bash
# `make image` / `make push`: builds (or pushes) the image with whichever engine this machine has — docker
# (with a reachable daemon), podman or buildah, in that order, or BUILDER=… — tagged
# <IMAGE>:<package.json version>-<git sha>[-dirty]. IMAGE defaults to teleport-plugin-mattermost; for a
# registry: IMAGE=registry.example.com/team/teleport-plugin-mattermost make image push. IMAGE_TAG overrides
# the tag. Then point the chart at it: --set image.repository=<IMAGE> --set image.tag=<tag>.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
action=${1:?usage: image.sh build|push|tag}

version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json)
sha=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain 2>/dev/null)" ] || sha="$sha-dirty"
image=${IMAGE:-teleport-plugin-mattermost}
tag=${IMAGE_TAG:-$version-$sha}
[ "$action" = tag ] && {
  echo "$image:$tag"
  exit 0
}

usable() {
  case $1 in
    docker) command -v docker >/dev/null && docker info >/dev/null 2>&1 ;;
    *) command -v "$1" >/dev/null ;;
  esac
}
builder=${BUILDER:-}
if [ -z "$builder" ]; then
  for candidate in docker podman buildah; do
    if usable "$candidate"; then
      builder=$candidate
      break
    fi
  done
fi
[ -n "$builder" ] || {
  echo "image: no image builder here: install docker (with a running daemon), podman or buildah, or set BUILDER." >&2
  command -v docker >/dev/null && echo "image: docker is installed but \`docker info\` fails: is the daemon running?" >&2
  echo "image: \`make test-image\` performs the Dockerfile's build steps without an engine." >&2
  exit 1
}

case $action in
  build)
    "$builder" build --build-arg "GIT_SHA=${sha%-dirty}" --tag "$image:$tag" --file Dockerfile .
    echo "image: built $image:$tag with $builder"
    echo "image: push it with \`IMAGE=$image make push\`, then install the chart with" \
      "--set image.repository=$image --set image.tag=$tag"
    ;;
  push)
    "$builder" push "$image:$tag"
    echo "image: pushed $image:$tag"
    ;;
  *)
    echo "usage: image.sh build|push|tag" >&2
    exit 2
    ;;
esac
