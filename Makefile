# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test lint docs bench clean airflow-init airflow

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/chanwatch demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

docs: $(STAMP)
	$(BIN)/python -m storage.docgen > docs/datasets.md

bench: $(STAMP)
	$(BIN)/python bench/bench_import.py

# Local Airflow on SQLite (loopback only), with the demo configuration: the fake Telegram, no credentials.
AIRFLOW_ENV := AIRFLOW_HOME=$(CURDIR)/var/airflow AIRFLOW_CONFIG=$(CURDIR)/airflow.cfg \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__EXECUTOR=LocalExecutor \
	AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$(CURDIR)/var/airflow/airflow.db \
	PATH=$(CURDIR)/$(BIN):$$PATH PYTHONPATH=$(CURDIR) \
	CHANWATCH_CONFIG=$${CHANWATCH_CONFIG:-$(CURDIR)/ops/chanwatch.demo.toml} \
	CHANWATCH_TELEGRAM_CLIENT_FACTORY=$${CHANWATCH_TELEGRAM_CLIENT_FACTORY-tests.airflow_fake:client_factory} \
	CHANWATCH_FAKE_FLOOD=$${CHANWATCH_FAKE_FLOOD-fake_source_demo:20:$(CURDIR)/var/airflow/demo-flood.marker}

airflow-init: $(STAMP)
	mkdir -p var/airflow
	$(AIRFLOW_ENV) $(BIN)/airflow db migrate
	$(AIRFLOW_ENV) $(BIN)/airflow pools import ops/pools.json

airflow: airflow-init
	$(AIRFLOW_ENV) bash ops/run-airflow.sh

clean:
	rm -rf var/demo var/data
