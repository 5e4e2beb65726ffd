# l2wg — see README.md. Every target is phony; `make test` installs what the
# tests need on a fresh Debian machine (as root).

GO       ?= go
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/l2wg
FUZZTIME ?= 30s
# Tools the network-namespace tests drive. Debian package: command.
TEST_TOOLS := iputils-ping:ping iperf3:iperf3 wireguard-tools:wg arping:arping nftables:nft tcpdump:tcpdump ethtool:ethtool \
	qemu-user-static:qemu-arm-static systemd:systemd-analyze man-db:man
# Architectures l2wg is built and packaged for: cmd/l2wg/dist/targets.
DIST ?= dist
# Packages whose unit tests run as 386 (natively) and as arm and arm64
# (under qemu-user); arch-test runs them. Under emulation -short; the frag
# memory-cap floods (100,000 fragments each) and the tunnel's receive
# allocation count (the tunnel's own timers allocate beside it when the
# emulator is slow) run natively only, and so do the namespace tests that
# re-execute their test binary (no binfmt_misc for qemu here), as does
# control's non-root client test.
ARCH_PKGS  := ./frag/... ./bridge/... ./stp/... ./tunnel/... ./cmd/l2wg/systemd \
	$(addprefix ./cmd/l2wg/internal/,config node metrics control uapi capture tomlpos wgsock)
QEMU_SKIP  := CapFlood|CapConcurrent|TestReceiveAllocatesNothing|InNamespaces|TestNonRootClientIsRefused

.PHONY: all build cross dist arch-test test unit wg-test e2e bench fuzz demo lint fmt-check vet deps clean

all: build

# build makes a static binary (no C library: the one the .deb ships, and
# 1.3 MB less resident).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/l2wg

# cross builds static binaries for every architecture into bin/cross.
cross:
	BINARIES_ONLY=1 sh cmd/l2wg/dist/dist.sh bin/cross $(VERSION)

# dist writes static binaries and a Debian package per architecture
# (binary, systemd unit, example /etc/l2wg/node.toml, l2wg(8)) to $(DIST).
dist:
	sh cmd/l2wg/dist/dist.sh $(DIST) $(VERSION)

# arch-test: every package compiles for every architecture, vet passes on 32-bit big-endian
# mips (test files included), and the unit tests of ARCH_PKGS pass as 386
# (natively; tap's namespace tests too; the 1,000-node mesh lab, 5 minutes
# there, is left to make bench as on amd64) and under qemu-user as arm
# (GOARM=5, soft float) and arm64.
arch-test: deps
	CHECK_ONLY=1 sh cmd/l2wg/dist/dist.sh bin/cross $(VERSION)
	GOARCH=mips GOMIPS=softfloat $(GO) vet ./...
	GOARCH=386 $(GO) test -count=1 -skip 'TestLab1000' $(ARCH_PKGS) ./tap/...
	GOARCH=arm GOARM=5 $(GO) test -short -count=1 -exec qemu-arm-static -skip '$(QEMU_SKIP)' $(ARCH_PKGS)
	GOARCH=arm64 $(GO) test -short -count=1 -exec qemu-aarch64-static -skip '$(QEMU_SKIP)' $(ARCH_PKGS)

# deps installs the test tools that are missing (apt-get, needs root).
deps:
	@missing=""; for t in $(TEST_TOOLS); do \
		command -v $${t#*:} >/dev/null 2>&1 || missing="$$missing $${t%%:*}"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	fi

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# NS_PKGS are the packages whose tests change the system: network
# namespaces, TAPs, a Debian package installed and removed (root);
# UNIT_PKGS are all the others: the library packages and the daemon's
# (config, control, capture, metrics, uapi, node, bridge/spanning, ...).
NS_PKGS   := ./cmd/l2wg ./cmd/l2wg/internal/lab ./cmd/l2wg/internal/netns ./cmd/l2wg/dist
UNIT_PKGS  = $(shell $(GO) list ./... | grep -v -x -e 'github.com/l2wg/l2wg/cmd/l2wg' -e '.*/internal/lab' -e '.*/internal/netns' -e '.*/cmd/l2wg/dist')

# test: formatting, vet, every package's unit tests with the race detector
# (fuzz seed corpora included), again without it the tests it would skip or
# shrink (zero allocations, the full-size floods and sizes), and the tests
# that change the system (root); between them arch-test (the other
# architectures, about 3 minutes on two cores). The root ones run one package at a time (-p 1):
# their measurements (failover gaps, loss over an impaired link) must not
# compete with each other for two CPUs.
test: deps fmt-check vet
	$(GO) test -race -count=1 $(UNIT_PKGS)
	$(MAKE) --no-print-directory wg-test
	$(GO) test -count=1 -run 'Alloc|CapFlood|EverySize' ./frag/... ./bridge/... ./stp/... ./tunnel/... ./tap/...
	$(MAKE) --no-print-directory arch-test
	$(GO) test -count=1 -timeout 20m -p 1 $(NS_PKGS)

unit: fmt-check vet
	$(GO) test -race -count=1 $(UNIT_PKGS)
	$(MAKE) --no-print-directory wg-test

# wg-test: the tests of l2wg's copy of wireguard-go (its own module), where
# its patches are tested (tunnel/internal/wireguard-go/L2WG-PATCH.md); the
# allocation counts without the race detector, which allocates itself.
wg-test:
	cd tunnel/internal/wireguard-go && $(GO) test -race -count=1 ./conn/ ./device/
	cd tunnel/internal/wireguard-go && $(GO) test -count=1 -run 'Alloc' ./device/

e2e: deps
	$(GO) test -count=1 -timeout 15m -run E2E -v ./cmd/l2wg

# bench: the Go benchmarks of the hot path, the failover benchmark (a site's
# l2wg killed 5 times per scenario in a namespace triangle, RSTP and 802.1D;
# FAILOVERFLAGS=-failover.kills=N to change), the shortest-path mesh's start,
# restart and failover figures (BenchmarkMeshStart, BenchmarkMeshFailover;
# -mesh.starts=N, -mesh.five=false), then the side-by-side benchmark
# in network namespaces (root): wireguard-go L3, wireguard-go + kernel VXLAN,
# tinc switch mode, fastd tap and l2wg, interleaved, 3 repetitions; the table
# goes to bench-results.md. BENCHFLAGS=-quick for a 1.5-minute run.
BENCHFLAGS ?=
FAILOVERFLAGS ?=
bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./frag/... ./bridge/... ./tunnel/...
	$(GO) test -run '^$$' -bench 'Failover|MeshStart' -benchtime 1x -timeout 40m ./cmd/l2wg/internal/lab $(FAILOVERFLAGS)
	$(GO) run ./cmd/l2wg/internal/bench -fastd -l2wg $(BIN) -out bench-results.md $(BENCHFLAGS)

fuzz:
	@for pkg in ./frag ./stp ./bridge/mesh ./tunnel ./tap ./cmd/l2wg/internal/config; do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# demo: two hypervisors, four VMs, l2wg in namespaces; pings across with
# full-size frames, checks, tears down (root).
demo: deps build
	$(BIN) lab run -l2wg $(BIN) two-hypervisors

lint: fmt-check vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest ./...

clean:
	rm -rf bin $(DIST)
