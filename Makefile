# funnel-tracker: `make demo` runs the product with a demo site; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_VISITORS ?= 5000
export FUNNEL_DATA_DIR ?= $(CURDIR)/data

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	@touch $@

.PHONY: install
install: $(VENV)/.installed ## Create .venv and install the package with test and dev extras

.PHONY: system-deps
system-deps: ## Install Debian chromium (browser tests) and Node.js (snippet) when missing
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then \
		echo "Installing Debian packages for the browser and snippet tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
			chromium fonts-liberation $$(command -v node >/dev/null 2>&1 || echo nodejs npm) \
			>/dev/null; \
	fi
	@chromium --version

.PHONY: js-deps
js-deps: ## Install the snippet's pinned build tools (npm ci)
	@if [ -f js/package-lock.json ]; then cd js && npm ci --no-audit --no-fund --silent; fi

.PHONY: js-build
js-build: js-deps ## Rebuild js/dist/t.js from js/src and print its sizes
	cd js && npm run --silent build

.PHONY: demo
demo: install ## Migrate, seed the demo site and serve it at http://127.0.0.1:8000
	$(BIN)/funnel migrate
	$(BIN)/funnel demo --visitors $(DEMO_VISITORS) --seed 1
	@echo "Open http://127.0.0.1:8000 and log in with the account printed above."
	$(BIN)/funnel serve

.PHONY: lint
lint: install ## ruff check, ruff format --check and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

.PHONY: fmt
fmt: install ## Format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: js-test
js-test: js-deps ## Snippet unit tests (node --test)
	@if [ -f js/package.json ]; then cd js && npm test --silent; fi

.PHONY: pytest
pytest: install ## The Python suite (unit, integration on chDB, browser); PYTEST_ARGS to narrow
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi; exit $$rc

.PHONY: test
test: install system-deps lint js-test pytest ## Everything CI runs: installs, lint, types, JS and Python tests

.PHONY: bench
bench: install ## Benchmarks (print figures; never part of the test run)
	$(BIN)/python bench/collect.py
	$(BIN)/python bench/funnel.py

.PHONY: clean
clean: ## Remove the virtualenv, caches and test artifacts (keeps ./data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/artifacts js/node_modules
