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
ALERTMANAGER_VERSION := v0.34.1
HELM_VERSION         := v3.22.0
JSONNET_VERSION      := v0.22.0

LISTEN ?= :9464

.PHONY: help
help: ## Show the targets.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: ort
ort: ## Install the ONNX Runtime shared library (npm onnxruntime-node, checksum-pinned).
	@./scripts/install-onnxruntime.sh

.PHONY: build
build: ort ## Build bin/sentinel-mesh.
	$(GO) build -o bin/sentinel-mesh ./cmd/sentinel-mesh

.PHONY: run
run: build ## Build and run on the embedded defaults (listens on :9464).
	./bin/sentinel-mesh --web.listen-address=$(LISTEN) --storage.path=data/

$(BIN)/prometheus $(BIN)/promtool:
	GOBIN=$(BIN) $(GO) install github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS_VERSION) github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION)

$(BIN)/alertmanager:
	GOBIN=$(BIN) $(GO) install github.com/prometheus/alertmanager/cmd/alertmanager@$(ALERTMANAGER_VERSION)

.PHONY: e2e-deps
e2e-deps: $(BIN)/prometheus $(BIN)/promtool $(BIN)/alertmanager ## Install pinned Prometheus, promtool and Alertmanager into .cache/bin.

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

.PHONY: test
test: unit e2e ## Run every test (the command CI runs).
	@echo "make test: all tests passed"
