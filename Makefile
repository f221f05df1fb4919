# Every target runs on the Node 24 that `npm ci` installs into node_modules/.bin (the machines ship Node 20).
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
TOOLS_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/teleport-plugin-mattermost/tools
export TOOLS_DIR
JEST := node --experimental-vm-modules node_modules/jest/bin/jest.js
CHART := charts/teleport-plugin-mattermost

.PHONY: all deps tools build lint format test test-unit test-integration test-k8s test-chart demo bench clean

all: build

# Install only when the lock file changed since the last install. `npm install` rather than `npm ci`:
# the registry mirror here lacks some other platforms' optional binaries (e.g. @bufbuild/buf-darwin-arm64),
# which npm leaves out of the lock file and `npm ci` then rejects as out of sync; the versions are still the locked ones.
node_modules/.installed: package-lock.json package.json
	npm install --no-audit --no-fund
	@touch $@
deps: node_modules/.installed
	@node --version | grep -q '^v24\.' || { echo "node_modules/.bin/node is not Node 24"; exit 1; }

tools:
	bash test/k8s/tools.sh

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

# The README's test command: installs what it needs, then runs every tier.
# Each tier writes its results under .tmp/ and the last line sums them ("tests: N passed, N failed").
test: deps tools lint build
	@mkdir -p .tmp && rm -f .tmp/jest-*.json .tmp/chart.log
	$(JEST) --selectProjects unit integration --json --outputFile=.tmp/jest-unit-integration.json
	set -o pipefail; $(MAKE) --no-print-directory test-chart 2>&1 | tee .tmp/chart.log
	$(JEST) --selectProjects k8s --runInBand --json --outputFile=.tmp/jest-k8s.json
	@node test/summary.mjs .tmp/jest-unit-integration.json .tmp/chart.log .tmp/jest-k8s.json

demo: deps build
	node dist/test/demo/demo.js

bench: deps tools build
	node dist/bench/run.js

clean:
	rm -rf dist coverage
