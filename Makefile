# ipvs-lab: the two commands a new user needs are `make run` and `make test`.
CARGO ?= cargo
SCENARIO ?= rr-persistence

.PHONY: deps build run test test-unit test-kernel lint fmt bench bench-loadgen report clean-lab

deps: ## install the Debian and Python packages the lab needs (idempotent)
	scripts/install-deps.sh

build: deps
	$(CARGO) build --workspace --all-targets

run: deps ## run the main scenario (real IPVS, inside User-Mode Linux when the host has none)
	$(CARGO) run -p lab -- scenario $(SCENARIO)

test: deps ## every test: unit, host-namespace, IPVS in UML, scenario suite + baselines, cleanup
	$(CARGO) build --workspace --all-targets
	$(CARGO) test --workspace --no-fail-fast -- --test-threads=1
	scripts/kernel-tests.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

bench: bench-loadgen ## all benchmarks (not tests)
	$(CARGO) bench -p bench

bench-loadgen: deps ## loadgen against h2load on loopback -> reports/perf/loadgen-vs-h2load.md
	bench/scripts/loadgen-vs-h2load.sh

clean-lab: ## remove leftovers of lab runs whose process is gone
	$(CARGO) run -q -p lab -- gc
