# EasyPay: `make run` to run it, `make test` to test it, `make help` for the rest. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
EMULATOR_PORT ?= 8999
PYTEST_ARGS ?=
DOCS_PORT ?= 8001

.PHONY: help run test lint format venv migrate e2e bench bench-holdout bench-cluster fuzz fuzz-stateful faults soak clean docs docs-build cluster cluster-down cluster-test cluster-test-ci

help: ## list the targets
	@echo "make <target>   (make run PORT=8000 EMULATOR_PORT=8999: the ports make run uses)"
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## create .venv with the pinned requirements

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-docs.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

migrate: venv ## apply migrations and the staff groups
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_staff_groups

run: venv ## the emulator, the schedule and the server on PORT (default 8000)
	@# The first manage.py call says it when the development SECRET_KEY is in use; the rest do not.
	$(PY) manage.py migrate --noinput
	@export EASYPAY_DEV_KEY_WARNED=1; $(PY) manage.py setup_staff_groups && \
	PORT=$(PORT) $(PY) manage.py seed_demo && \
	PORT=$(PORT) EMULATOR_PORT=$(EMULATOR_PORT) PY=$(PY) exec bash scripts/run-dev.sh

test: venv ## the test suite (PYTEST_ARGS=... to narrow it)
	@exports="$$($(PY) scripts/testenv.py)" || exit 1; eval "$$exports"; \
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; fi; exit $$rc

e2e: venv ## end-to-end tests against a real stack
	@exports="$$($(PY) scripts/testenv.py)" || exit 1; eval "$$exports"; \
	$(PY) -m pytest tests/e2e -m e2e -p no:cacheprovider

bench: venv ## the benchmark
	bash bench/run.sh

bench-holdout: venv ## the held-out style load run: gunicorn configurations alternated, CPU per request per process
	$(PY) -m bench.holdout

bench-cluster: venv ## the benchmark's cluster mode: 1 vs 3 web instances behind HAProxy
	$(PY) bench/cluster_bench.py

fuzz: venv ## schema fuzzing
	@exports="$$($(PY) scripts/testenv.py)" || exit 1; eval "$$exports"; \
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-200} $(PY) tests/fuzz/run_fuzz.py $(PYTEST_ARGS)

fuzz-stateful: venv ## stateful schema fuzzing
	@exports="$$($(PY) scripts/testenv.py)" || exit 1; eval "$$exports"; \
	FUZZ_STATEFUL=1 $(PY) -m pytest tests/fuzz/test_schema_fuzz.py -k stateful -p no:cacheprovider -q

faults: venv ## fault-injection tests
	env -u REDIS_URL -u DATABASE_URL EASYPAY_FAULTS=1 $(PY) -m pytest tests/faults -p no:cacheprovider -ra $(PYTEST_ARGS)

soak: venv ## the soak test
	$(PY) tests/soak/soak.py

# A whole cluster (docs/operations/cluster.md): HAProxy on $(PORT), 3 web instances,
# PostgreSQL primary + 2 replicas, Redis + Sentinel, 2 workers, one beat. Data under $(CLUSTER_DIR).
CLUSTER_DIR ?= .cluster
cluster: venv ## a whole cluster on loopback (HAProxy on PORT; data under CLUSTER_DIR)
	$(PYTHON) scripts/cluster.py up --dir $(CLUSTER_DIR) --port $(PORT)
	@echo "EasyPay cluster: http://127.0.0.1:$(PORT)  (. $(CLUSTER_DIR)/env; make cluster-down to stop it)"

cluster-down: ## stop the cluster and remove its data
	$(PYTHON) scripts/cluster.py down --dir $(CLUSTER_DIR)

# Fault tests against a whole cluster: every one (long), or the bounded set CI runs (a few minutes).
cluster-test: venv ## every cluster fault test (long)
	env -u REDIS_URL -u DATABASE_URL EASYPAY_CLUSTER=1 $(PY) -m pytest tests/cluster -m cluster -p no:cacheprovider -ra $(PYTEST_ARGS)

cluster-test-ci: venv ## the bounded cluster fault tests CI runs
	env -u REDIS_URL -u DATABASE_URL EASYPAY_CLUSTER=1 $(PY) -m pytest tests/cluster -m cluster_ci -p no:cacheprovider -ra $(PYTEST_ARGS)

lint: venv ## ruff check, ruff format --check, import contracts (.importlinter), mypy, makemigrations --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	DATABASE_URL=sqlite:///:memory: $(VENV)/bin/mypy
	DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run
	@schema="$$(mktemp --suffix=.yaml)"; trap 'rm -f "$$schema"' EXIT; \
	DATABASE_URL=sqlite:///:memory: $(PY) -W ignore manage.py spectacular --validate --fail-on-warn --file "$$schema" && \
	$(VENV)/bin/openapi-spec-validator "$$schema"

docs: venv ## serve the documentation on 127.0.0.1:$(DOCS_PORT)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

docs-build: venv ## build the documentation strictly (broken links fail) into site/
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

format: venv ## ruff fix and format
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean: ## remove .venv, local databases, the emulator's state, the built docs
	rm -rf $(VENV) db.sqlite3 test-db.sqlite3 .pytest_cache staticfiles .data site
