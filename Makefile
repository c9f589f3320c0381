# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip

.PHONY: test demo install lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml requirements-test.txt
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-test.txt
	$(PIP) install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed

test: install
	bash scripts/run-tests.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check django_realtime tests
	$(BIN)/mypy

typecheck: install
	$(BIN)/mypy

demo: install
	bash scripts/demo.sh

bench: install
	bash scripts/run-bench.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .demo
