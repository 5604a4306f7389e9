# crmkit: two commands set up everything on a fresh machine.
#   make demo   a virtual environment, the kernel and every first-party plugin, a throw-away
#               SQLite deployment in .demo/ with sample data, and what it holds
#   make test   the same environment, the whole test suite
# CRMKIT_TEST_DATABASE_URLS (comma-separated SQLAlchemy URLs) adds PostgreSQL and MariaDB
# runs to the tests; .ci/run sets it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Every distribution in the repository, installed editable into one environment (devpi's
# monorepo habit): the kernel with its test extras, then each plugin that exists.
DISTS := $(wildcard plugins/*/pyproject.toml contrib/*/pyproject.toml)
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml $(DISTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' $(foreach d,$(DISTS),-e ./$(dir $(d)))
	touch $(STAMP)

demo: venv
	rm -rf .demo
	$(BIN)/crmkit init .demo
	PATH="$(abspath $(BIN)):$$PATH" CRMKIT_CONFIG="$(abspath .demo/crmkit.toml)" \
		CRMKIT_ACTOR=demo sh examples/demo.sh

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check crmkit tests benchmarks contrib
	$(BIN)/mypy

bench: venv
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .demo .pytest_cache .hypothesis
