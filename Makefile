# Sentinel Mesh. `make run` starts the server on its embedded defaults;
# `make test` runs every test. Both install what they need into .cache/.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
CACHE     := $(CURDIR)/.cache
BIN       := $(CACHE)/bin
export SENTINEL_ORT_LIB := $(CACHE)/onnxruntime/libonnxruntime.so

PROMETHEUS_VERSION   := v0.316.0
HELM_VERSION         := v3.22.0
JSONNET_VERSION      := v0.22.0

LISTEN ?= :9464

VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH   ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X github.com/prometheus/common/version.Version=$(VERSION) \
            -X github.com/prometheus/common/version.Revision=$(REVISION) \
            -X github.com/prometheus/common/version.Branch=$(BRANCH)

.PHONY: help
help: ## Show the targets.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: ort
ort: ## Install the ONNX Runtime shared library (npm onnxruntime-node, checksum-pinned).
	@./scripts/install-onnxruntime.sh

.PHONY: build
build: ort ## Build bin/sentinel-mesh.
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/sentinel-mesh ./cmd/sentinel-mesh

.PHONY: run
run: build ## Build and run on the embedded defaults (listens on :9464).
	./bin/sentinel-mesh --web.listen-address=$(LISTEN) --storage.path=data/

$(BIN)/prometheus $(BIN)/promtool:
	GOBIN=$(BIN) $(GO) install github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS_VERSION) github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION)

# Alertmanager's module lacks its compiled web UI, so `go install` fails; the
# e2e test builds the pinned module itself (e2e/am_helpers_test.go).
.PHONY: e2e-deps
e2e-deps: $(BIN)/prometheus $(BIN)/promtool ## Install pinned Prometheus and promtool into .cache/bin.

.PHONY: unit
unit: ort ## Go unit tests with the race detector.
	$(GO) vet ./...
	$(GO) test -race -count=1 -short ./...

.PHONY: e2e
e2e: ort e2e-deps ## End-to-end tests against real Prometheus and Alertmanager.
	$(GO) test -count=1 -timeout 20m ./e2e/...

.PHONY: fuzz
fuzz: ## Run each decoder fuzz target for FUZZTIME (default 30s).
	$(GO) test ./remotewrite/ -run '^$$' -fuzz '^FuzzDecodeV1$$' -fuzztime $(or $(FUZZTIME),30s)
	$(GO) test ./remotewrite/ -run '^$$' -fuzz '^FuzzDecodeV2$$' -fuzztime $(or $(FUZZTIME),30s)
	$(GO) test ./detector/ -run '^$$' -fuzz '^FuzzSeriesStateUnmarshal$$' -fuzztime $(or $(FUZZTIME),30s)
	$(GO) test ./internal/api/ -run '^$$' -fuzz '^FuzzStoreRestoreCheckpoint$$' -fuzztime $(or $(FUZZTIME),30s)
	$(GO) test ./internal/backfill/ -run '^$$' -fuzz '^FuzzDecodeQuery$$' -fuzztime $(or $(FUZZTIME),30s)
	$(GO) test ./internal/backfill/ -run '^$$' -fuzz '^FuzzDecodeSeries$$' -fuzztime $(or $(FUZZTIME),30s)
	$(GO) test ./internal/backfill/ -run '^$$' -fuzz '^FuzzDecodeReadResponse$$' -fuzztime $(or $(FUZZTIME),30s)
	$(GO) test ./exporter/ -run '^$$' -fuzz '^FuzzLokiRejected$$' -fuzztime $(or $(FUZZTIME),30s)
	$(GO) test ./kafka/ -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(or $(FUZZTIME),30s)
	$(GO) test ./internal/checkpoint/ -run '^$$' -fuzz '^FuzzBlockReader$$' -fuzztime $(or $(FUZZTIME),30s)

.PHONY: training-deps
training-deps: ## Install the pinned TensorFlow.js training dependencies (npm ci).
	cd detector/training && npm ci --no-audit --no-fund

MODEL_DIR      ?= models/default
MODEL_FLAGS    ?= --units 16 --dense none --dropout 0 --window 32 --series 128 --length 4096 --windows 200000 --epochs 5 --seed 1
MODEL_CI_FLAGS ?= --units 16 --dense none --dropout 0 --window 32 --series 8 --length 1024 --windows 4000 --epochs 1 --seed 1

.PHONY: model
model: training-deps ## Retrain the embedded default model (same flags and seed give the same bytes).
	cd detector/training && node src/train.js --out ../../$(MODEL_DIR) $(MODEL_FLAGS)

.PHONY: training-test
training-test: ort training-deps ## Training unit tests, then a one-epoch training checked for ONNX/tfjs parity in Go.
	cd detector/training && npm test
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	(cd detector/training && node src/train.js --out "$$tmp" $(MODEL_CI_FLAGS)) && \
	SENTINEL_MODEL_DIR="$$tmp" $(GO) test -count=1 -run 'Parity' ./detector/onnxmodel/

# Python/Keras trainer of the sentinel-mesh/v2 (distribution) models, docs/training.md.
PY_VENV        := $(CACHE)/py-train
PY             := $(PY_VENV)/bin/python
PY_REQS        := detector/training/py/requirements.txt
PY_CONSTRAINTS := detector/training/py/constraints.txt
TRAIN_DATA     ?= ../shared/nab-dev ../shared/ops-dev
PY_DATA_FLAGS   = $(foreach d,$(TRAIN_DATA),--data $(d))
PY_MODEL_FLAGS ?= --window 32 --units 16 --windows 300000 --epochs 6 --seed 1
PY_CI_FLAGS    ?= --data $(firstword $(TRAIN_DATA)) --fold A --window 32 --units 16 --windows 4000 --epochs 1 --seed 1

# The stamp is newer than the pin files once the pinned set is installed; a
# changed requirements.txt or constraints.txt rebuilds the venv from scratch.
$(PY_VENV)/.installed: $(PY_REQS) $(PY_CONSTRAINTS)
	rm -rf $(PY_VENV)
	python3 -m venv $(PY_VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-input -r $(PY_REQS) -c $(PY_CONSTRAINTS)
	touch $@

.PHONY: training-py-deps
training-py-deps: $(PY_VENV)/.installed ## Install the pinned TensorFlow/tf2onnx training venv into .cache/py-train.

.PHONY: training-py-test
training-py-test: ort training-py-deps ## Python trainer tests, then a tiny Keras training checked for ONNX/Keras parity in Go.
	cd detector/training/py && $(PY) -m pytest -q -p no:cacheprovider test_train.py
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PY) detector/training/py/train.py --out "$$tmp" $(PY_CI_FLAGS) && \
	SENTINEL_MODEL_DIR="$$tmp" $(GO) test -count=1 -run 'Parity' ./detector/onnxmodel/

.PHONY: fold-models
fold-models: training-py-deps ## Train models/folds/{A,B} and models/dev-all on $(TRAIN_DATA) (Keras, v2).
	$(PY) detector/training/py/train.py $(PY_DATA_FLAGS) --fold A --out models/folds/A $(PY_MODEL_FLAGS)
	$(PY) detector/training/py/train.py $(PY_DATA_FLAGS) --fold B --out models/folds/B $(PY_MODEL_FLAGS)
	$(PY) detector/training/py/train.py $(PY_DATA_FLAGS) --fold all --out models/dev-all $(PY_MODEL_FLAGS)

.PHONY: mixin
mixin: ## Generate mixin/out/{alerts,rules}.yaml and dashboards (and the chart's copies).
	bash mixin/build.sh

.PHONY: test-mixin
test-mixin: ## promtool check/test rules and the dashboard checks.
	bash mixin/test.sh

.PHONY: test-charts
test-charts: ## helm lint/template and the chart render tests.
	bash charts/test.sh

EVAL_DATA ?= ../shared/nab-dev ../shared/ops-dev
.PHONY: eval
eval: ort ## Score the default detector and the window-mean baseline on both inner folds of $(EVAL_DATA); update docs/detection.md.
	$(GO) run ./cmd/sentinel-mesh eval $(addprefix --data ,$(EVAL_DATA)) --out .cache/eval \
		--model embedded --model baseline --docs docs/detection.md

.PHONY: eval-ablation
eval-ablation: ort ## The ablation table of docs/detection.md (each term off, each constant moved).
	$(GO) run ./cmd/sentinel-mesh eval --ablation $(addprefix --data ,$(EVAL_DATA)) --out .cache/eval \
		--model embedded --docs docs/detection.md

.PHONY: eval-counters
eval-counters: ort ## The counters table of docs/detection.md (traffic anomalies in Prometheus counters, on rates and raw values; needs no corpus).
	$(GO) run ./cmd/sentinel-mesh eval --counters 10 --out .cache/eval --model embedded --docs docs/detection.md

.PHONY: eval-thresholds
eval-thresholds: ort ## The threshold table of docs/detection.md (event F1 and precision per fold at thresholds around the default; needs ../shared).
	$(GO) run ./cmd/sentinel-mesh eval $(addprefix --data ,$(EVAL_DATA)) --out .cache/eval --model embedded --model baseline \
		--threshold-sweep 0.66 --threshold-sweep 0.68 --threshold-sweep 0.7 --threshold-sweep 0.72 --threshold-sweep 0.74 --docs docs/detection.md

.PHONY: eval-heavy-tails
eval-heavy-tails: ort ## The heavy-tails table of docs/detection.md (false alarms on heavy-tailed noise every minute; needs no corpus).
	$(GO) run ./cmd/sentinel-mesh eval --heavy-tails 100 --out .cache/eval --model embedded --model baseline --docs docs/detection.md

.PHONY: eval-churn
eval-churn: ort ## The pod churn table of docs/detection.md (dev corpora fed as workloads whose pods are replaced; needs ../shared).
	$(GO) run ./cmd/sentinel-mesh eval --churn-table $(addprefix --data ,$(EVAL_DATA)) --out .cache/eval --model embedded --model baseline --docs docs/detection.md

.PHONY: eval-injected
eval-injected: ort ## The injected-anomalies table of docs/detection.md (detection power at 15 s and 5 min; needs no corpus).
	$(GO) run ./cmd/sentinel-mesh eval --injected 20 --out .cache/eval \
		--model embedded --model baseline --docs docs/detection.md

.PHONY: bench
bench: ort ## Go benchmarks of the hot paths.
	$(GO) test -run '^$$' -bench . -benchmem ./remotewrite/ ./detector/... ./kafka/

.PHONY: chromium
chromium: ## Install Debian's chromium for the plugin's headless page check (root only; make test fails without it).
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not installed and not root: install it (apt-get install chromium), or the plugin's page check fails under make test"; fi; }

.PHONY: plugin
plugin: ## Build the Grafana plugin (frontend + backend) into grafana-plugin/dist.
	$(MAKE) -C grafana-plugin plugin

.PHONY: plugin-zip
plugin-zip: ## The Grafana plugin archive grafana-plugin/build/<id>-<version>.zip (PLATFORMS: all five).
	$(MAKE) -C grafana-plugin plugin-zip

.PHONY: test-plugin
test-plugin: ort chromium ## Grafana plugin tests: Go (SDK, archive, gRPC, headless page) and frontend.
	$(MAKE) -C grafana-plugin plugin-zip test

# Under make test a missing or broken required component (ONNX Runtime,
# Prometheus, Alertmanager, chromium, ...) fails its test instead of skipping
# it; prerequisites inherit the variable, sub-makes get it from the environment.
test: export SENTINEL_REQUIRE_COMPONENTS := 1

.PHONY: test
test: unit e2e training-test test-mixin test-charts test-plugin ## Run every test (the command CI runs).
	@echo "make test: all tests passed"
