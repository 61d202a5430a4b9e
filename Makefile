# ipvs-lab: the two commands a new user needs are `make run` and `make test`.
CARGO ?= cargo
SCENARIO ?= rr-persistence

FUZZ_SECONDS ?= 600
# Everything that measures runs an optimized build: a debug build's latency
# and throughput describe the debug build (report.json records the profile,
# report.md warns about an unoptimized one). Release builds the lab from
# scratch in 275 s on 2 cores; a dev profile with opt-level 1 and optimized
# dependencies took longer (see README, "Build profile").
OPTIMIZE ?= --release

.PHONY: deps build run test lint fmt doc bench bench-loadgen fuzz soak clean-lab help

deps: ## install what the lab needs, its UML kernel included (idempotent; the first build ~10 min)
	scripts/install-deps.sh

build: deps ## build every target of the workspace (optimized)
	$(CARGO) build $(OPTIMIZE) --workspace --all-targets

run: deps ## run the main scenario (real IPVS, inside User-Mode Linux when the host has none)
	$(CARGO) run $(OPTIMIZE) -p lab -- scenario $(SCENARIO)

test: deps ## every test (optimized build): unit, host-namespace, IPVS in UML, scenario suite + baselines, cleanup
	$(CARGO) build $(OPTIMIZE) --workspace --all-targets
	$(CARGO) test $(OPTIMIZE) --workspace --no-fail-fast -- --test-threads=1

lint: ## rustfmt --check, clippy -D warnings, and no import pointing up the module order
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test -q -p lab --test architecture

fmt: ## rustfmt the workspace
	$(CARGO) fmt --all

doc: ## API docs of the workspace, every rustdoc warning an error (target/doc/)
	RUSTDOCFLAGS='-D warnings' $(CARGO) doc --workspace --no-deps

bench: deps ## every performance figure side by side in one run (not a test; ~9 min on 2 cores) -> reports/perf/perf.md, perf.json
	bench/scripts/perf.sh

bench-loadgen: deps ## loadgen vs h2load, and generic vs demo mode, on loopback -> reports/perf/
	bench/scripts/loadgen-vs-h2load.sh
	bench/scripts/generic-vs-demo.sh

fuzz: ## every fuzz target for FUZZ_SECONDS each (default 600; not in CI): executions and crashes
	scripts/fuzz.sh $(FUZZ_SECONDS)

SOAK_RUNS ?= 20

soak: deps ## the scenario suite SOAK_RUNS times (default 20; not in CI) -> reports/soak/: pass rate and p-value spread per scenario
	scripts/soak.sh $(SOAK_RUNS)

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

clean-lab: ## remove leftovers of lab runs whose process is gone
	$(CARGO) run $(OPTIMIZE) -q -p lab -- gc
