# quantmm: `make setup && make demo` on a fresh machine; `make test` runs the tests.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# This machine's pip configuration names local index folders that may be absent: drop those notices.
QUIET_PIP = 2>&1 | { grep -v "^WARNING: Location" || true; }
VENV ?= .venv
PY := $(VENV)/bin/python
export QUANTMM_HOME ?= $(CURDIR)/.quantmm
export DAGSTER_HOME ?= $(QUANTMM_HOME)/dagster
export HF_HUB_OFFLINE := 1
# Writes $(DAGSTER_HOME)/dagster.yaml (SQLite, or PostgreSQL when DAGSTER_PG_URL is set).
ENSURE_DAGSTER_HOME = $(PY) -c "from quantmm_resources.environment import ensure_dagster_home; \
	from quantmm_resources.settings import get_settings; ensure_dagster_home(get_settings())"

.PHONY: setup demo test bench mutate ui validate lint lock clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip $(QUIET_PIP)
	$(VENV)/bin/pip install -q -r requirements.lock $(QUIET_PIP)
	$(VENV)/bin/pip install -q --no-deps -e . $(QUIET_PIP)
	touch $@

demo: setup
	$(VENV)/bin/quantmm demo

test: setup
	$(VENV)/bin/pytest -q -n 2 --dist loadgroup -p no:cacheprovider

# The benches (bench/, beside tests/: never part of the installed packages) on their own homes and instances.
bench: setup
	$(PY) -m bench ingest
	$(PY) -m bench features --home $(QUANTMM_HOME)-bench
	$(PY) -m bench train --home $(QUANTMM_HOME)-bench
	$(PY) -m bench gates --home $(QUANTMM_HOME)-bench
	$(PY) -m bench serve --home $(QUANTMM_HOME)-bench-serve
	$(PY) -m bench paper --home $(QUANTMM_HOME)-bench --synthetic-home $(QUANTMM_HOME)-bench-paper

# Mutation-test the rule-bearing core modules (mutation/mutation.toml; docs/mutation.md). A report: exits 0.
mutate: setup
	$(PY) mutation/run.py

ui: setup
	@$(ENSURE_DAGSTER_HOME)
	@echo "Dagster UI on http://127.0.0.1:3000 (webserver and daemon run as separate processes; Ctrl-C stops both)"
	@trap 'kill $$(jobs -p) 2>/dev/null; wait' INT TERM EXIT; \
	  $(VENV)/bin/dagster-daemon run -w workspace.yaml & \
	  $(VENV)/bin/dagster-webserver -h 127.0.0.1 -p 3000 -w workspace.yaml & \
	  wait

# Load the code location the way the webserver does (needs DAGSTER_HOME: the repository's dagster.yaml is
# the PostgreSQL one and wants DAGSTER_PG_URL).
validate: setup
	@$(ENSURE_DAGSTER_HOME)
	$(VENV)/bin/dagster definitions validate -w workspace.yaml
	$(VENV)/bin/dg check defs

lint: setup
	$(VENV)/bin/ruff check .

# Regenerate the lock file after changing dependencies in pyproject.toml (needs the package registries).
lock:
	rm -rf .lock-venv && python3 -m venv .lock-venv && .lock-venv/bin/pip install -q --upgrade pip
	.lock-venv/bin/pip install -q -e '.[dev]'
	.lock-venv/bin/pip freeze --exclude-editable | sed 's/^torch==2.13.0+cpu/torch==2.13.0/' > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(QUANTMM_HOME)
