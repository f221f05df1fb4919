# Every target runs on the Node 24 that `npm ci` installs into node_modules/.bin (the machines ship Node 20).
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
TOOLS_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/teleport-plugin-mattermost/tools
export TOOLS_DIR
JEST := node --experimental-vm-modules node_modules/jest/bin/jest.js
CHART := charts/teleport-plugin-mattermost

.PHONY: all deps tools build lint format test test-unit test-integration test-k8s test-chart test-clone test-image test-mattermost-real image push demo bench clean

all: build

# Install only when the lock file changed since the last install (a dependency change in package.json
# changes the lock too, or `make lint` says the lock is stale): `npm ci`, exactly the locked versions
# (scripts/npm-ci.sh: npm on the machine's Node installs Node 24 into node_modules/.bin).
node_modules/.installed: package-lock.json
	bash scripts/npm-ci.sh
	@touch $@
deps: node_modules/.installed
	@node --version | grep -q '^v24\.' || { echo "node_modules/.bin/node is not Node 24"; exit 1; }

tools:
	bash test/k8s/tools.sh
	bash test/mattermost-real/tools.sh

# dist/operator etc.: the compiled sources (tests, bench). dist/bundle: what the image ships, the CLI bundled
# and minified by esbuild into main.mjs plus chunks that load per role (the watcher's gRPC/Mattermost
# stack and the operator's controller are loaded only by `start` / `operator`); no node_modules needed.
BUNDLE_FLAGS := --bundle --splitting --format=esm --platform=node --target=node24 --minify \
	--legal-comments=external --out-extension:.js=.mjs --chunk-names=chunks/[name]-[hash] \
	--define:process.env.TPM_BUNDLED_VERSION='"'$$(node -p 'require("./package.json").version')'"' \
	--banner:js="import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" \
	--log-level=warning
build: deps
	rm -rf dist && tsc -p tsconfig.build.json && chmod +x dist/operator/cli/main.js
	esbuild operator/cli/main.ts $(BUNDLE_FLAGS) --outdir=dist/bundle && chmod +x dist/bundle/main.mjs

lint: deps
	bash scripts/npm-ci.sh --check
	node test/lint/repo-paths.mjs
	node test/image/dockerfile.ts
	eslint .
	prettier --check .
	tsc -p tsconfig.json --noEmit

format: deps
	prettier --write .

test-unit: deps
	$(JEST) --selectProjects unit

test-integration: deps build
	$(JEST) --selectProjects integration

test-k8s: deps tools build
	$(JEST) --selectProjects k8s --runInBand

test-chart: tools
	bash test/chart/run.sh

# The relay and the conformance suite against a real Mattermost (built by `make tools`); one server per run.
test-mattermost-real: deps tools build
	$(JEST) --selectProjects mattermost-real --runInBand

# The Dockerfile's stages performed without an engine, then the result run (test/image/build.test.ts).
test-image: deps
	$(JEST) --selectProjects image

# The image, with docker, podman or buildah: IMAGE=registry.example.com/team/teleport-plugin-mattermost make
# image push. Tagged <package.json version>-<git sha>; prints the chart's --set flags for it.
image:
	bash scripts/image.sh build
push:
	bash scripts/image.sh push

# The unit tier and the chart lint from a copy of the tracked files with nothing beside it (see the script).
test-clone: deps
	bash test/clone/run.sh .tmp/clone

# The README's test command: installs what it needs, then runs every tier, even after one failed, and
# closes with one line summing them all ("tests: N passed, N failed"); fails at the end if anything failed.
# Adding a tier is one word in TEST_TIERS: a jest project needs nothing else (`test-tier-<name>` runs
# `jest --selectProjects <name>`); any other tier defines its command as `tier-<name>` below.
TEST_STEPS := build tools
TEST_TIERS := lint unit integration image chart k8s clone mattermost-real
RESULTS := .tmp/results
jest-tier = $(JEST) --selectProjects $* --json --outputFile=$(RESULTS)/$*.json
tier-build = $(MAKE) --no-print-directory build
tier-tools = $(MAKE) --no-print-directory tools
tier-lint = $(MAKE) --no-print-directory lint
tier-k8s = $(jest-tier) --runInBand
tier-mattermost-real = $(jest-tier) --runInBand
tier-chart = set -o pipefail; bash test/chart/run.sh 2>&1 | tee $(RESULTS)/chart.log
tier-clone = bash test/clone/run.sh $(RESULTS)/clone

test: deps
	@rm -rf $(RESULTS) && mkdir -p $(RESULTS)
	@for tier in $(TEST_STEPS) $(TEST_TIERS); do \
	  echo "== make test: $$tier"; \
	  $(MAKE) --no-print-directory test-tier-$$tier; echo $$? >$(RESULTS)/$$tier.rc; \
	done
	@node test/summary.mjs $(RESULTS) $(TEST_STEPS) $(TEST_TIERS)

test-tier-%: deps
	$(or $(tier-$*),$(jest-tier))

demo: deps build
	node dist/test/demo/demo.js

bench: deps tools build
	node dist/bench/run.js

clean:
	rm -rf dist coverage
