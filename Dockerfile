# One image for both roles: `teleport-mattermost start -c …` (the watcher) and `teleport-mattermost operator`.
# The build stage runs the same `make deps` and `make build` as CI; the runtime stage runs dist/bundle (the
# CLI bundled and minified by esbuild with its dependencies; each role loads only its own chunks), as a
# non-root user, with no writable root filesystem. The production node_modules stay only for the chart's CRD
# upgrade hook (charts/…/files/upgrade-crd.mjs imports @kubernetes/client-node and yaml from /app).
# Built by `make image` (docker, podman or buildah); test/image/build.test.ts performs these stages without
# an engine (same RUN commands, parsed from this file) and runs the result.
FROM node:24-bookworm-slim AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
# `make deps` is `npm ci` (scripts/npm-ci.sh), as on every machine: exactly the locked versions.
COPY package.json package-lock.json Makefile ./
COPY scripts/npm-ci.sh ./scripts/
RUN make deps
COPY tsconfig.json tsconfig.build.json ./
COPY operator ./operator
COPY test ./test
COPY bench ./bench
RUN make build && npm prune --omit=dev

FROM node:24-bookworm-slim
ARG GIT_SHA=unknown
# A small young generation: V8 sizes it for the host's memory, not the container's. Measured with the relay
# tracking 10,000 requests: RSS 366 MiB -> 242 MiB (bench P3, docs/benchmarks.md), at no loss of throughput.
ENV NODE_ENV=production GIT_SHA=${GIT_SHA} NODE_OPTIONS=--max-semi-space-size=1
# glibc malloc: blocks of 32 KiB and more (V8's compiler zones, socket read buffers) are mapped and unmapped
# on their own instead of staying in fragmented arenas after they are freed, and at most two arenas.
# Measured on the idle watcher (bench P3): anonymous RSS 39 -> 26 MiB, with the same CPU per post (P1, P2).
ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=32768 MALLOC_TRIM_THRESHOLD_=32768
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/bundle ./dist/bundle
RUN ln -s /app/dist/bundle/main.mjs /usr/local/bin/teleport-mattermost
# uid/gid 65532: the conventional "nonroot" user; the chart and the operator set runAsNonRoot.
USER 65532:65532
EXPOSE 8080 8081
# Both roles start without V8's optimizing compilers (NODE_OPTIONS does not accept these flags); the watcher
# turns them on once it is ready (operator/cli/main.ts says why and what it measured).
ENTRYPOINT ["node", "--no-opt", "--no-maglev", "/app/dist/bundle/main.mjs"]
CMD ["start", "--config", "/etc/teleport-mattermost.toml"]
