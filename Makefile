# EasyPay: `make run` to run it, `make test` to test it. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
EMULATOR_PORT ?= 8999
PYTEST_ARGS ?=

.PHONY: run test lint format venv migrate e2e bench fuzz fuzz-stateful faults soak clean cluster cluster-down cluster-test cluster-test-ci

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
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

# A whole cluster (docs/operations/cluster.md): HAProxy on $(PORT), 3 web instances,
# PostgreSQL primary + 2 replicas, Redis + Sentinel, 2 workers, one beat. Data under $(CLUSTER_DIR).
CLUSTER_DIR ?= .cluster
cluster: venv
	$(PYTHON) scripts/cluster.py up --dir $(CLUSTER_DIR) --port $(PORT)
	@echo "EasyPay cluster: http://127.0.0.1:$(PORT)  (. $(CLUSTER_DIR)/env; make cluster-down to stop it)"

cluster-down:
	$(PYTHON) scripts/cluster.py down --dir $(CLUSTER_DIR)

# Fault tests against a whole cluster: every one (long), or the bounded set CI runs (a few minutes).
cluster-test: venv
	env -u REDIS_URL -u DATABASE_URL EASYPAY_CLUSTER=1 $(PY) -m pytest tests/cluster -m cluster -p no:cacheprovider -ra $(PYTEST_ARGS)

cluster-test-ci: venv
	env -u REDIS_URL -u DATABASE_URL EASYPAY_CLUSTER=1 $(PY) -m pytest tests/cluster -m cluster_ci -p no:cacheprovider -ra $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) db.sqlite3 test-db.sqlite3 .pytest_cache staticfiles
