# raygo: two commands on a fresh machine.
#   make demo   builds everything and runs the pipeline example on an embedded cluster
#   make test   installs what the tests need, then runs them all
GO      ?= go
BIN     := bin
FUZZTIME ?= 300000x
# Packages whose tests also run under the race detector.
CORE    := . ./runtime/... ./objstore/... ./raygotest/... ./launcher/... ./slurm/...
# The collectives packages run under the race detector in their short form.
COLLECTIVES := ./collectives ./collectives/backend/... ./collectives/shm ./collectives/tcp ./collectives/hier ./collectives/mpi

.PHONY: all build demo test deps vet fmt-check unit test-slurm race fuzz clean bench bench-launch bench-scale
.PHONY: mpi-deps test-mpi bench-collectives-mpi

all: build

deps:
	@command -v $(GO) >/dev/null || { echo "Go is required (https://go.dev/dl)"; exit 1; }
	$(GO) mod download

build: deps
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/raygo ./cmd/raygo
	$(GO) build -o $(BIN)/raygo-launch ./cmd/raygo-launch
	$(GO) build -o $(BIN)/pipeline ./examples/pipeline
	$(GO) build -o $(BIN)/quickstart ./examples/quickstart

demo: build
	./$(BIN)/pipeline

test: deps vet fmt-check unit test-mpi test-slurm race fuzz

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -count=1 -timeout 15m ./...

# raygo-launch on a real Slurm 22.05 cluster on this machine (scripts/slurm;
# started if needed, which installs Slurm and needs root; skipped without
# root when no cluster runs). About 30 s. See docs/slurm.md.
test-slurm: mpi-deps
	GO=$(GO) bash scripts/test-slurm.sh

# Debian's Open MPI and MPICH, with pkg-config (the cgo build finds them
# through it) and libpmix-dev (Slurm's pmix plugin loads libpmix.so);
# installed when missing, which needs root.
MPI_PKGS := openmpi-bin libopenmpi-dev mpich libmpich-dev libpmix-dev pkg-config
mpi-deps:
	@missing=""; for p in $(MPI_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get -o DPkg::Lock::Timeout=900 -q update >/dev/null || true; \
		apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends $$missing >/dev/null; \
	fi

# The mpi backend (collectives/mpi) built with -tags mpi (Open MPI) and
# -tags mpi,mpich, run under mpirun and mpiexec as 1 to 4 ranks, and the
# stand-in under mpirun; about 20 s. Under Slurm (srun --mpi=pmix and
# --mpi=pmi2) it runs in test-slurm.
test-mpi: deps mpi-deps
	GO=$(GO) bash collectives/mpi/mpirun-test.sh

# OpenMPI's MPI_Allreduce (shared memory and TCP on loopback, 2 ranks)
# next to raygo's shm and tcp backends, per size, in one run.
bench-collectives-mpi: mpi-deps
	GO=$(GO) bash benchmarks/collectives/compare.sh

race:
	$(GO) test -race -count=1 -timeout 15m $(CORE)
	$(GO) test -race -short -count=1 -timeout 15m $(COLLECTIVES)

# Every decoder that reads from a socket or a file, briefly (a count of
# inputs rather than a time: a time limit can end the run mid-minimization,
# which go test reports as a failure): the wire
# frames and handshake, stored object headers, hostlists, rendezvous and
# nodes files, resource flags. The seed corpora under testdata/ always run
# with the unit tests.
FUZZ_SHORT ?= 100000x
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./runtime/wire/
	$(GO) test -run '^$$' -fuzz '^FuzzHandshake$$' -fuzztime $(FUZZ_SHORT) ./runtime/wire/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./runtime/codec/
	$(GO) test -run '^$$' -fuzz '^FuzzExpand$$' -fuzztime $(FUZZ_SHORT) ./slurm/
	$(GO) test -run '^$$' -fuzz '^FuzzParseHeadInfo$$' -fuzztime $(FUZZ_SHORT) ./launcher/
	$(GO) test -run '^$$' -fuzz '^FuzzParseNodesFile$$' -fuzztime $(FUZZ_SHORT) ./launcher/
	$(GO) test -run '^$$' -fuzz '^FuzzParseCustom$$' -fuzztime $(FUZZ_SHORT) ./runtime/resources/

bench:
	$(GO) run ./benchmarks/core

bench-launch:
	GO=$(GO) bash benchmarks/launch/launch-time.sh

# Ray's scale envelope (1M queued tasks, 10k args, 3k returns, 10k gets,
# 10k actors, 1 GiB to 3 nodes) with wall time and peak memory of every
# process; about a minute at full scale. SCALE=0.01 for a quick check.
SCALE ?= 1
bench-scale:
	$(GO) run ./benchmarks/scale -scale $(SCALE)

clean:
	rm -rf $(BIN)
