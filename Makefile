# EasyPay: `make run` to run it, `make test` to test it. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
EMULATOR_PORT ?= 8999
PYTEST_ARGS ?=
DOCS_PORT ?= 8001

.PHONY: run test lint format venv migrate e2e bench fuzz fuzz-stateful faults soak clean docs docs-build

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-docs.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

migrate: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_staff_groups

run: venv migrate
	PORT=$(PORT) $(PY) manage.py seed_demo
	PORT=$(PORT) EMULATOR_PORT=$(EMULATOR_PORT) PY=$(PY) bash scripts/run-dev.sh

test: venv
	@exports="$$($(PY) scripts/testenv.py)" || exit 1; eval "$$exports"; \
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; fi; exit $$rc

e2e: venv
	@exports="$$($(PY) scripts/testenv.py)" || exit 1; eval "$$exports"; \
	$(PY) -m pytest tests/e2e -m e2e -p no:cacheprovider

bench: venv
	bash bench/run.sh

fuzz: venv
	@exports="$$($(PY) scripts/testenv.py)" || exit 1; eval "$$exports"; \
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-200} $(PY) tests/fuzz/run_fuzz.py $(PYTEST_ARGS)

fuzz-stateful: venv
	@exports="$$($(PY) scripts/testenv.py)" || exit 1; eval "$$exports"; \
	FUZZ_STATEFUL=1 $(PY) -m pytest tests/fuzz/test_schema_fuzz.py -k stateful -p no:cacheprovider -q

faults: venv
	env -u REDIS_URL -u DATABASE_URL EASYPAY_FAULTS=1 $(PY) -m pytest tests/faults -p no:cacheprovider -ra $(PYTEST_ARGS)

soak: venv
	$(PY) tests/soak/soak.py

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run

docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

docs-build: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) db.sqlite3 test-db.sqlite3 .pytest_cache staticfiles site
