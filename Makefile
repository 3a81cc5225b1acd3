# Two commands on a fresh machine:
#   make run    install into .venv and serve at http://127.0.0.1:$(PORT) (default 8000) on SQLite
#   make test   install the test dependencies and run the whole suite
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test test-postgres lint format bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(PIP) install -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/hookscope serve

test: $(VENV)/.test-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest

# The suite again on PostgreSQL (HOOKSCOPE_TEST_POSTGRES_URL must name a role that may create
# databases); .ci/run runs it after `make test`.
test-postgres: $(VENV)/.test-installed
	HOOKSCOPE_TEST_SUITE_DB=postgres $(VENV)/bin/pytest -m "not browser"

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(VENV)/.test-installed
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
