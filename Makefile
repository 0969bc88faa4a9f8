# fincelo-whatsapp: targets named by intent. Each works on a fresh machine:
# it installs what it needs (Python venvs, cargo tools) itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
PY          := python3
DEV_MOTO_PORT  ?= 5055
TEST_MOTO_PORT ?= 5056
BENCH_MOTO_PORT ?= 5062
BENCH_VENV  := .venv-bench
BENCH_ARGS  ?=
SOAK_MOTO_PORT ?= 5063
JOURNEY_MOTO_PORT ?= 5064
# Sizes of the reliability scenarios under `make soak` (`make test` runs the
# defaults in tests/tests/reliability.rs: 300 requests, 2,000 webhook events).
SOAK_FAULT_N      ?= 2000
SOAK_STORM_EVENTS ?= 10000
SOAK_FUZZ_SECS    ?= 600
CARGO_LAMBDA := $(VENV)/bin/cargo-lambda

.PHONY: help dev journey test lint build deploy bench soak fuzz venv clean

help:
	@echo "make dev     - the whole system on loopback: moto, the Meta sandbox, the four functions, a demo scenario"
	@echo "make journey - the operator's day one to day three through fwa, on a local stack with a compressed clock"
	@echo "make test    - unit and integration tests (moto + Meta sandbox) and the template linters"
	@echo "make soak    - the reliability scenarios at full size (2,000 faulty sends, 10,000 webhook events), with their tallies, then make fuzz for SOAK_FUZZ_SECS (600 s) per target"
	@echo "make lint    - rustfmt check, clippy (warnings denied), template linters"
	@echo "make build   - cargo lambda build --release --arm64"
	@echo "make deploy  - sam build, then sam deploy --guided"
	@echo "make fuzz    - cargo fuzz on the webhook parser and handler, FUZZ_SECS each (default 60)"
	@echo "make bench   - the performance report: bench/report/latest.md and latest.json (see README)"

# The project's Python venv: moto (local AWS), cargo-lambda and zig for builds.
$(VENV)/.stamp: infra/requirements.txt
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	touch $@

venv: $(VENV)/.stamp

dev: venv
	@infra/moto.sh start $(DEV_MOTO_PORT)
	@trap 'infra/moto.sh stop $(DEV_MOTO_PORT)' EXIT INT TERM; \
	cargo build --quiet -p fwa -p fincelo-local && mkdir -p .local/bin && ln -sf ../../target/debug/fwa .local/bin/fwa && \
	echo "fwa installed at .local/bin/fwa" && \
	target/debug/fincelo-local dev --moto http://127.0.0.1:$(DEV_MOTO_PORT)

# The operator's day one to day three (issue 17) through fwa only, against a
# local stack of its own (its own moto, sandbox and tables) with a compressed
# clock. Prints a timeline; the last line is `journey: N/N steps passed`, and
# the exit status is 0 only when every step passed.
journey: venv
	@infra/moto.sh start $(JOURNEY_MOTO_PORT) >/dev/null
	@trap 'infra/moto.sh stop $(JOURNEY_MOTO_PORT)' EXIT INT TERM; \
	cargo build --quiet --locked -p fwa -p fincelo-local && \
	target/debug/fincelo-local journey --moto http://127.0.0.1:$(JOURNEY_MOTO_PORT) --fwa target/debug/fwa --dir .local/journey

test: venv
	@infra/moto.sh start $(TEST_MOTO_PORT)
	@trap 'infra/moto.sh stop $(TEST_MOTO_PORT)' EXIT; \
	FWA_TEST_MOTO=http://127.0.0.1:$(TEST_MOTO_PORT) cargo test --workspace --locked 2>&1 | tee .local/test.log; \
	status=$${PIPESTATUS[0]}; [ $$status -eq 0 ] || exit $$status
	@infra/lint-iac.sh

# The reliability scenarios only, one at a time, at the sizes above; each prints its tally.
soak: venv
	@infra/moto.sh start $(SOAK_MOTO_PORT)
	@mkdir -p .local; trap 'infra/moto.sh stop $(SOAK_MOTO_PORT)' EXIT; \
	FWA_TEST_MOTO=http://127.0.0.1:$(SOAK_MOTO_PORT) FWA_FAULT_N=$(SOAK_FAULT_N) FWA_STORM_EVENTS=$(SOAK_STORM_EVENTS) \
	cargo test -p fincelo-tests --locked --test integration reliability:: -- --nocapture --test-threads=1 2>&1 | tee .local/soak.log; \
	status=$${PIPESTATUS[0]}; [ $$status -eq 0 ] || exit $$status
	@$(MAKE) --no-print-directory fuzz FUZZ_SECS=$(SOAK_FUZZ_SECS)

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	infra/lint-iac.sh

$(CARGO_LAMBDA): venv
	$(VENV)/bin/pip install --quiet --disable-pip-version-check cargo-lambda==1.9.2 ziglang==0.17.1
	@touch $@

# zig is found through `python3 -m ziglang`, so the venv's python must come first on PATH.
# Only the Lambda functions: the local tools are not deployed.
build: $(CARGO_LAMBDA)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --arm64 \
		-p fincelo-webhook -p fincelo-sender -p fincelo-templates -p fincelo-admin

deploy: $(CARGO_LAMBDA)
	@test -x .venv-lint/bin/sam || infra/lint-iac.sh
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 .venv-lint/bin/sam build
	SAM_CLI_TELEMETRY=0 .venv-lint/bin/sam deploy --guided

# Fuzzing: cargo-fuzz drives libFuzzer. It needs nightly-only compiler flags;
# RUSTC_BOOTSTRAP=1 lets this machine's one (stable) toolchain accept them.
# No sanitizer (-s none): the targets look for panics and wrong statuses.
CARGO_FUZZ := .tools/bin/cargo-fuzz
FUZZ_SECS ?= 60
FUZZ_MOTO_PORT ?= 5057

$(CARGO_FUZZ):
	cargo install --quiet --locked --root .tools cargo-fuzz@0.13.2

fuzz: venv $(CARGO_FUZZ)
	@infra/moto.sh start $(FUZZ_MOTO_PORT)
	@trap 'infra/moto.sh stop $(FUZZ_MOTO_PORT)' EXIT; \
	for t in webhook_parse webhook_handler; do \
	  mkdir -p .local/fuzz/$$t && \
	  echo "fuzzing $$t for $(FUZZ_SECS) s" && \
	  RUSTC_BOOTSTRAP=1 FWA_FUZZ_MOTO=http://127.0.0.1:$(FUZZ_MOTO_PORT) $(CARGO_FUZZ) run -s none --debug-assertions \
	    --fuzz-dir fuzz $$t .local/fuzz/$$t fixtures/meta/webhook-examples -- \
	    -max_total_time=$(FUZZ_SECS) -max_len=65536 -print_final_stats=1 || exit 1; \
	done

# The intake benchmark's peers, installed (not copied) at pinned versions.
$(BENCH_VENV)/.stamp: bench/peers/requirements.txt
	$(PY) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/peers/requirements.txt
	touch $@

bench/peers/node_modules/.stamp: bench/peers/package.json bench/peers/package-lock.json
	cd bench/peers && npm ci --silent --no-audit --no-fund
	touch $@

# Release binaries for the host (cold start, footprint), the hello-world
# baseline built the same way, the harness, and the arm64 zips (sizes).
# Each cargo invocation builds what `make build` would, so features are not
# unified with the harness's.
bench: venv $(CARGO_LAMBDA) $(BENCH_VENV)/.stamp bench/peers/node_modules/.stamp
	cargo build --release --locked -p fincelo-webhook -p fincelo-sender -p fincelo-templates -p fincelo-admin
	cargo build --release --locked -p hello-lambda
	cargo build --release --locked -p fincelo-bench
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --arm64 --output-format zip \
		-p fincelo-webhook -p fincelo-sender -p fincelo-templates -p fincelo-admin
	@infra/moto.sh start $(BENCH_MOTO_PORT)
	@trap 'infra/moto.sh stop $(BENCH_MOTO_PORT)' EXIT; \
	pid=$$(cat .local/moto-$(BENCH_MOTO_PORT).pid 2>/dev/null); \
	target/release/fincelo-bench run --moto http://127.0.0.1:$(BENCH_MOTO_PORT) $${pid:+--moto-pid $$pid} \
		--python $(BENCH_VENV)/bin/python --out bench/report $(BENCH_ARGS)
	@echo "report: bench/report/latest.md (and latest.json)"

clean:
	cargo clean
	rm -rf $(VENV) $(BENCH_VENV) .venv-lint .local bench/peers/node_modules bench/report
