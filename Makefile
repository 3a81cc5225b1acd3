# Two commands on a fresh machine:
#   make run    install into .venv and serve at http://127.0.0.1:$(PORT) (default 8000) on SQLite
#   make test   install the test dependencies and run the whole suite
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test test-postgres lint format bench constraints clean

# Everything within constraints.txt: the versions the tests ran with.
$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) install -c constraints.txt -e '.[postgres,redis,client]'
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(PIP) install -c constraints.txt -e '.[postgres,redis,client,test]'
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

# Resolve pyproject.toml's ranges afresh and pin the result; then run make test.
constraints:
	rm -rf .venv-constraints
	python3 -m venv .venv-constraints
	.venv-constraints/bin/python -m pip --disable-pip-version-check -q install -e '.[postgres,redis,client,test]'
	{ echo "# The versions the tests ran with: make run and make test install within these."; \
	  echo "# Refresh with \`make constraints\` (a fresh resolve of pyproject.toml's ranges), then run make test."; \
	  .venv-constraints/bin/python -m pip freeze --exclude-editable | grep -v '^hookscope'; } > constraints.txt
	rm -rf .venv-constraints

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
