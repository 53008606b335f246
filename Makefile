# One command each: `make demo` (set up + run the demo), `make test` (set up + run the tests).
# Targets create .venv themselves, so a fresh machine needs only Python 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench airflow clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "cri-overlap needs Python 3.11, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cri-overlap demo

test: $(STAMP)
	@bash .ci/system-deps
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint sql

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/sealing.py
	$(BIN)/python bench/feedback.py

# A local Airflow (standalone: SQLite, no example DAGs, no login) with this project's DAG,
# pointed at the demo data dir; the demo runs first when there is no demo data yet.
# UI: http://localhost:8080 (AIRFLOW_PORT to move it; task runners reach the execution API there).
# pipelines/airflow_local.py runs standalone so that one Ctrl+C stops every process it started.
# sqlite waits up to 60 s for a lock (its default 5 s is too short for Airflow's components
# writing one file on a small, busy machine: "database is locked").
AIRFLOW_PORT ?= 8080
airflow: $(STAMP)
	@test -f data/keys/hub.key.json || $(BIN)/cri-overlap demo --quiet
	PATH=$(CURDIR)/$(BIN):$$PATH \
	AIRFLOW_HOME=$(CURDIR)/airflow_home \
	AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$(CURDIR)/airflow_home/airflow.db?timeout=60 \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True \
	AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://localhost:$(AIRFLOW_PORT)/execution/ \
	CRI_DATA_DIR=$(CURDIR)/data \
	CRI_HUB_KEY_FILE=$(CURDIR)/data/keys/hub.key.json \
	CRI_CERTS_DIR=$(CURDIR)/data/certs \
	exec $(BIN)/python -m pipelines.airflow_local

clean:
	rm -rf $(VENV) data airflow_home .pytest_cache .ruff_cache .hypothesis
