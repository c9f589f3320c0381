# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip

.PHONY: test test-compat demo demo-call install lint typecheck bench clean docs

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

# The support matrix's edges: Python 3.10 + Django 4.2, Python 3.12 + Django 6.x.
test-compat:
	bash scripts/test-compat.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check django_realtime tests bench example_project
	$(BIN)/mypy

typecheck: install
	$(BIN)/mypy

demo: install
	bash scripts/demo.sh

demo-call: install
	bash scripts/demo-call.sh

bench: install
	bash scripts/run-bench.sh

# The documentation site, warnings as errors, into docs/_build/html (gitignored).
# Sphinx does not import the package, so only the docs requirements are needed.
$(VENV)/.docs-installed: $(BIN)/python requirements-docs.txt
	$(PIP) install -q -r requirements-docs.txt
	touch $@

docs: $(VENV)/.docs-installed
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

clean:
	rm -rf $(VENV) .venv-compat build dist *.egg-info .demo docs/_build
