# Kattle's developer entry points. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements/image.txt
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: help venv setup lock sdk graphviz binaries npm-deps node-deps node images cluster-images generate diagrams lint typecheck unit integration e2e test demo demo-cluster bench soak clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# The runtime dependencies are the image's lock (its versions, without the hashes: an
# editable install cannot be hash-checked), so the tests run what the image ships.
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Kattle needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	sed -e '/--hash=/d' -e 's/ \\$$//' $(LOCK) > $(VENV)/constraints.txt
	$(BIN)/pip install --quiet -c $(VENV)/constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

lock: ## pin the image's dependencies, with hashes, in requirements/image.txt (pip-tools)
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet pip-tools==7.6.2
	$(VENV)-lock/bin/pip-compile --quiet --upgrade --generate-hashes --strip-extras \
	  --allow-unsafe --no-emit-index-url --no-emit-find-links --output-file $(LOCK) pyproject.toml

venv: $(STAMP) ## only .venv: the package and the dev tools

# Only Python 3.11+ with pip: no venv needed (a handler author's first step; docs/sdk.md).
sdk: ## build kattle-sdk, the slim handler SDK, into dist/kattle_sdk-<version>-py3-none-any.whl
	$(PYTHON) hack/build_sdk.py wheel --out dist

setup: $(STAMP) binaries graphviz node-deps npm-deps ## create .venv and build the control-plane binaries (first time: minutes)

graphviz: ## Graphviz's dot, to draw diagrams (installed with apt-get when missing and possible)
	@command -v dot >/dev/null || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y -q graphviz >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q graphviz >/dev/null; }; \
	  else echo "note: Graphviz's dot is missing; tests that draw diagrams will be skipped" >&2; fi; }

binaries: ## build kube-apiserver, kubectl, etcd, helm from Go modules into ~/.cache/kattle
	@hack/binaries.sh ensure >/dev/null

npm-deps: ## the npm Standard Webhooks library a test verifies Kattle's requests with (npm ci)
	@if command -v npm >/dev/null; then \
	  npm ci --prefix tests/support/node_verifier --no-audit --no-fund --loglevel=error; \
	else echo "note: no npm: the Standard Webhooks interoperability test will fail" >&2; fi

node-deps: ## the local node's Debian packages (containerd, runc, CNI plugins, buildah, ...), as root
	@if [ "$$(id -u)" = 0 ]; then hack/node.sh deps; \
	  else echo "note: not root, so no local node: the cluster tests (tests/cluster) will be skipped" >&2; fi

node: node-deps ## build the node's binaries (kubelet, kube-proxy, kube-scheduler, CoreDNS) into ~/.cache/kattle
	@hack/binaries.sh ensure --node >/dev/null

images: node ## build the images (the Dockerfile, the sample handlers, pause, CoreDNS) with buildah
	@hack/images.sh ensure >/dev/null

# Built before pytest starts (not in a fixture, under the tests' timeout): the first build
# takes minutes. Skipped, with the reason, where no node can run.
cluster-images: node-deps
	@if reason=$$(python3 hack/node.py check); then $(MAKE) --no-print-directory images; \
	  else echo "note: $$reason: the cluster tests (tests/cluster) will be skipped" >&2; fi

generate: $(STAMP) ## regenerate crds/, docs/protocol/ and the chart's crds/ and samples
	$(BIN)/kattle crds --write crds
	$(BIN)/kattle schemas --write docs/protocol
	$(BIN)/python hack/generate_chart.py

DIAGRAM_SOURCES := -f samples/instance.yaml -f samples/handlers.yaml
diagrams: $(STAMP) graphviz ## draw docs/diagrams/ from the samples with `kattle dot`
	for target in rd/instance pd/instance.start; do \
	  name=$${target#*/}; \
	  for format in dot svg png; do \
	    $(BIN)/kattle dot $$target $(DIAGRAM_SOURCES) -o $$format --to docs/diagrams/$$name.$$format; \
	  done; \
	done

lint: $(STAMP) ## ruff, hadolint (Dockerfile), shellcheck (scripts)
	$(BIN)/ruff check operator tests hack samples
	$(BIN)/ruff format --check operator tests hack samples
	$(BIN)/hadolint Dockerfile samples/handlers/Dockerfile samples/handlers/node/Dockerfile
	$(BIN)/shellcheck --external-sources --source-path=SCRIPTDIR hack/*.sh .ci/run

typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy operator/kattle hack/controlplane.py hack/node.py hack/bench.py hack/bench_related.py hack/bench_peers.py hack/bench_trace.py hack/peer_kopf.py hack/soak.py hack/generate_chart.py hack/build_sdk.py

unit: $(STAMP) ## unit tests only (no control plane)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: setup ## integration tests against a local control plane
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

e2e: setup cluster-images ## end to end on a local node (root): helm install, pods, Services, DNS, faults
	$(BIN)/pytest tests/cluster $(PYTEST_ARGS)

test: setup cluster-images lint typecheck ## everything: lint, types, unit, integration and end-to-end tests
	$(BIN)/pytest $(PYTEST_ARGS)

demo: setup ## start a local control plane, install Kattle's API and the samples, show them
	hack/demo.sh

demo-cluster: setup ## on a local node (root): build the image, helm install, an instance's life in pods
	PATH=$(CURDIR)/$(BIN):$$PATH hack/demo-cluster.sh

BENCH_SIZES ?= 100 1000
PEER_OBJECTS ?= 1000
PEER_ROUNDS ?= 2
bench: setup ## against the API server's ceiling (BENCH_SIZES), against a plain Kopf operator (PEER_OBJECTS, PEER_ROUNDS), then one idle run's trace
	$(BIN)/python hack/bench.py --sizes $(BENCH_SIZES)
	$(BIN)/python hack/bench_peers.py --objects $(PEER_OBJECTS) --rounds $(PEER_ROUNDS)
	$(BIN)/python hack/bench_trace.py

SOAK_SECONDS ?= 3600
soak: setup ## an hour (SOAK_SECONDS) of runs with faulty handlers and a crashing operator; a tally
	$(BIN)/python hack/soak.py --seconds $(SOAK_SECONDS)

clean: ## remove the venv and caches (keeps the binaries in ~/.cache/kattle)
	rm -rf $(VENV) $(VENV)-lock .mypy_cache .ruff_cache .pytest_cache
