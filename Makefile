# gatehouse — the two commands of the quick start are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
DATA_DIR ?= ./gatehouse-data
LISTEN ?= 127.0.0.1:8080

.PHONY: help run test check deps fmt clippy build release screenshots dist bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: ## Build (release) and serve on http://127.0.0.1:8080 with data in ./gatehouse-data
	$(CARGO) build --release --locked
	./target/release/gatehouse serve --data-dir $(DATA_DIR) --listen $(LISTEN)

deps: ## Install what the tests need and this machine lacks (Chromium, chromedriver, nginx, Caddy, Apache with mod_auth_openidc, PostgreSQL, axe-core)
	@./.ci/install-test-deps

test: deps ## Install missing test tools, then run every test (unit, integration, browser) on redb and on a throw-away PostgreSQL
	CARGO=$(CARGO) ./scripts/test-all

screenshots: deps ## Save every page (desktop and phone, light and dark) into docs/screenshots/
	$(CARGO) test --locked --test api screenshots -- --ignored

fmt: ## Format the code
	$(CARGO) fmt --all

clippy: ## Lint, warnings are errors
	$(CARGO) clippy --locked --all-targets -- -D warnings

check: deps ## The gate: formatting, lints, all tests (what CI should pass)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	CARGO=$(CARGO) ./scripts/test-all

release: ## Build the release binary
	$(CARGO) build --release --locked

DIST_TARGET := x86_64-unknown-linux-musl

dist: ## Build the static x86-64 musl binary into dist/gatehouse (installs the musl target and musl-tools when missing)
	@./.ci/install-dist-deps
	$(CARGO) build --release --locked --target $(DIST_TARGET)
	@mkdir -p dist/data  # dist/ is also the container build context (packaging/Containerfile)
	cp target/$(DIST_TARGET)/release/gatehouse dist/gatehouse
	@echo "dist/gatehouse: $$(stat -c %s dist/gatehouse) bytes ($$(du -h dist/gatehouse | cut -f1))"
	@file dist/gatehouse
	@if file dist/gatehouse | grep -Eq 'static-pie linked|statically linked' \
	    || ldd dist/gatehouse 2>&1 | grep -Eq 'not a dynamic executable|statically linked'; then \
	  echo "dist/gatehouse is static"; \
	else \
	  echo "error: dist/gatehouse is not static:" >&2; ldd dist/gatehouse >&2 || true; exit 1; \
	fi

bench: ## Measure against this machine's limits (wrk; installs it when missing), print the table, update docs/performance.md
	python3 bench/run.py
