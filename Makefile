# fincelo-whatsapp: targets named by intent. Each works on a fresh machine:
# it installs what it needs (Python venvs, cargo tools) itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
PY          := python3
DEV_MOTO_PORT  ?= 5055
TEST_MOTO_PORT ?= 5056
CARGO_LAMBDA := $(VENV)/bin/cargo-lambda

.PHONY: help dev test lint build deploy bench soak fuzz venv clean

help:
	@echo "make dev     - the whole system on loopback: moto, the Meta sandbox, the three functions, a demo scenario"
	@echo "make test    - unit and integration tests (moto + Meta sandbox) and the template linters"
	@echo "make lint    - rustfmt check, clippy (warnings denied), template linters"
	@echo "make build   - cargo lambda build --release --arm64"
	@echo "make deploy  - sam build, then sam deploy --guided"
	@echo "make fuzz    - cargo fuzz on the webhook parser and handler, FUZZ_SECS each (default 60)"

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

test: venv
	@infra/moto.sh start $(TEST_MOTO_PORT)
	@trap 'infra/moto.sh stop $(TEST_MOTO_PORT)' EXIT; \
	FWA_TEST_MOTO=http://127.0.0.1:$(TEST_MOTO_PORT) cargo test --workspace --locked 2>&1 | tee .local/test.log; \
	status=$${PIPESTATUS[0]}; [ $$status -eq 0 ] || exit $$status
	@infra/lint-iac.sh

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

clean:
	cargo clean
	rm -rf $(VENV) .venv-lint .local
