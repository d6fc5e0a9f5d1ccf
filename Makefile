# Herald's build. `make lab` shows Herald working on a local lab; `make test`
# runs every test (unit, integration against a real kube-apiserver + etcd).

SHELL        := /bin/bash
BIN          := $(CURDIR)/bin
GO           ?= go
K8S_VERSION  := v1.34.4
CONTROLLER_GEN_VERSION := v0.19.0
K8S_LDFLAGS  := -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION)

# Test binaries: kube-apiserver, etcd (and kubectl for people and the lab)
# are built from Go modules pinned in hack/k8s and cached in bin/.
ENVTEST_ASSETS := $(BIN)/kube-apiserver $(BIN)/etcd
CONTROLLER_GEN := $(BIN)/controller-gen

.PHONY: all build generate manifests verify test unit integration e2e lab lab-down bench bench-alloc bench-scale lint tools clean help

all: build

help:
	@echo "make build      build bin/controller and bin/speaker"
	@echo "make test       verify generated files, vet, unit and integration tests (and e2e as root)"
	@echo "make lab        bring up the network lab and show a Service answering (root)"
	@echo "make lab-down   tear the lab down"
	@echo "make e2e        the end-to-end suite on the lab (root)"
	@echo "make bench      allocator benchmarks and the controller scale benchmark"
	@echo "make generate   deepcopy code;  make manifests: CRDs"
	@echo "make verify     fail if generated files drift"

build:
	$(GO) build -o $(BIN)/controller ./controller
	@if [ -d speaker ]; then echo "$(GO) build -o $(BIN)/speaker ./speaker"; $(GO) build -o $(BIN)/speaker ./speaker; fi
	$(GO) build -o $(BIN)/lab ./e2e/cmd/lab

tools: $(ENVTEST_ASSETS) $(BIN)/kubectl $(CONTROLLER_GEN)

$(CONTROLLER_GEN):
	GOBIN=$(BIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)

$(BIN)/etcd: hack/k8s/go.mod hack/k8s/go.sum
	cd hack/k8s && $(GO) build -o $@ go.etcd.io/etcd/server/v3

$(BIN)/kube-apiserver: hack/k8s/go.mod hack/k8s/go.sum
	cd hack/k8s && $(GO) build -ldflags "$(K8S_LDFLAGS)" -o $@ k8s.io/kubernetes/cmd/kube-apiserver

$(BIN)/kubectl: hack/k8s/go.mod hack/k8s/go.sum
	cd hack/k8s && $(GO) build -ldflags "$(K8S_LDFLAGS)" -o $@ k8s.io/kubernetes/cmd/kubectl

generate: $(CONTROLLER_GEN)
	$(CONTROLLER_GEN) object paths=./api/...

manifests: $(CONTROLLER_GEN)
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:dir=manifests/crd/bases

# verify regenerates into the tree and fails if anything changed.
verify: generate manifests
	@if [ -n "$$(git status --porcelain -- api manifests)" ]; then \
		echo "generated files drifted from their sources; run 'make generate manifests' and commit:"; \
		git status --porcelain -- api manifests; git diff --stat -- api manifests; exit 1; fi
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

lint:
	$(GO) vet ./...

unit:
	$(GO) test ./...

# Integration tests need the envtest assets; HERALD_REQUIRE_ENVTEST makes a
# missing asset a failure instead of a skip. As root, tests that build
# network namespaces must run too (HERALD_REQUIRE_NETNS).
integration: $(ENVTEST_ASSETS)
	KUBEBUILDER_ASSETS=$(BIN) HERALD_REQUIRE_ENVTEST=1 \
	HERALD_REQUIRE_NETNS=$$([ "$$(id -u)" = 0 ] && echo 1) \
	$(GO) test -count=1 ./...

# The end-to-end suite needs root (network namespaces): `make test` runs
# it after the integration tests when it has root.
test: verify lint integration
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory e2e; \
	else echo "e2e: skipped, it needs root (network namespaces); run 'sudo make e2e'"; fi

# The network lab (e2e/README.md). LAB_DIR holds its state, kubeconfig and logs.
LAB_DIR     ?= $(CURDIR)/lab
LAB_NODES   ?= 3
E2E_TIMEOUT ?= 30m

lab: tools build
	$(BIN)/lab up --dir $(LAB_DIR) --nodes $(LAB_NODES)
	$(BIN)/lab demo --dir $(LAB_DIR)

lab-down:
	@if [ -x $(BIN)/lab ]; then $(BIN)/lab down --dir $(LAB_DIR); \
	else $(GO) run ./e2e/cmd/lab down --dir $(LAB_DIR); fi

# HERALD_REQUIRE_LAB turns "cannot bring the lab up" into a failure.
e2e: tools build
	HERALD_REQUIRE_LAB=1 HERALD_E2E_DIR=$(LAB_DIR)-e2e $(GO) test -tags e2e -count=1 -v -timeout $(E2E_TIMEOUT) ./e2e/...

bench: bench-alloc bench-scale

bench-alloc:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./internal/allocator/

bench-scale: $(ENVTEST_ASSETS) build
	$(GO) run ./hack/scalebench --assets $(BIN) -- $(BIN)/controller --leader-elect=false --metrics-addr=0 --health-addr=0

clean:
	rm -rf $(BIN)
