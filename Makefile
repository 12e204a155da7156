# Entry points of the project. Every target creates .venv first when it is missing.
#   make demo   - fresh machine to a deployed model: local S3, two weeks of logs, two retraining runs
#   make test   - the test suite (starts the local S3 server itself when needed)
#   make test-fast - the unit tier only: no server, no DAG run, under two minutes
#   make loop   - thirty simulated days of a moving world, the agent retrained by the real DAG every night
#   make coverage - how often the gate's 95% intervals cover the simulator's truth, per estimator
#   make decisions - how often the gate's nightly choice is right by the truth, SNIPS and DR on the same nights
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed-requirements

# Settings of the embedded default; created from local.env.example with fresh keys.
include local.env
local.env:
	PYTHONPATH=include python3 -m agent_retraining.dev.local_s3 env

export S3_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION
export LOGS_BUCKET MODELS_BUCKET ARTIFACTS_BUCKET LOCAL_S3_DIR
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PYTHONPATH := $(CURDIR)/include:$(CURDIR)/plugins
export AIRFLOW_HOME := $(CURDIR)/.local/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export GX_ANALYTICS_ENABLED := False
export AIRFLOW_CONN_AGENT_S3 := {"conn_type": "aws", "login": "$(AWS_ACCESS_KEY_ID)", "password": "$(AWS_SECRET_ACCESS_KEY)", "extra": {"endpoint_url": "$(S3_ENDPOINT_URL)", "region_name": "$(AWS_DEFAULT_REGION)"}}

AGENT ?= support-bot
YESTERDAY := $(shell date -u -d yesterday +%F)
DAY ?= $(YESTERDAY)
DAYS ?= 14
START ?= $(shell date -u -d "$(DAY) - $$(( $(DAYS) - 1 )) days" +%F)

.PHONY: help venv node-client mlflow-venv s3-up s3-down simulate retrain check-spec demo loop coverage decisions test test-fast lint airflow-db airflow airflow-cli bench bench-text browser

help:
	@grep -E '^#   make' Makefile | sed 's/^#   //'
	@echo "make simulate AGENT=$(AGENT) START=YYYY-MM-DD DAYS=n | make retrain AGENT=$(AGENT) DAY=YYYY-MM-DD"
	@echo "make loop AGENT=$(AGENT) SCENARIO=gradual_drift DAYS=30 | make bench SCALES=1,4,10"
	@echo "make coverage AGENT=$(AGENT) SEEDS=200 | make decisions AGENT=$(AGENT) SCENARIO=gradual_drift SEEDS=200"
	@echo "make check-spec AGENT=$(AGENT) [EVENTS_PER_DAY=n]"
	@echo "make s3-up | make s3-down | make airflow | make lint"

$(INSTALLED): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(INSTALLED)

# The Node.js client's packages (clients/node/), the exact versions of its package-lock.json; its .npmrc skips
# onnxruntime-node's download of CUDA files (the CPU binaries come in the npm package).
NODE_CLIENT := clients/node
NODE_INSTALLED := $(NODE_CLIENT)/node_modules/.package-lock.json
$(NODE_INSTALLED): $(NODE_CLIENT)/package-lock.json
	npm ci --prefix $(NODE_CLIENT)
	touch $@

node-client: $(NODE_INSTALLED)

s3-up: venv
	$(PY) -m agent_retraining.dev.local_s3 up

s3-down: venv
	$(PY) -m agent_retraining.dev.local_s3 down

$(AIRFLOW_HOME)/airflow.db: $(INSTALLED)
	mkdir -p $(AIRFLOW_HOME)
	$(VENV)/bin/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log

airflow-db: $(AIRFLOW_HOME)/airflow.db

simulate: s3-up
	$(PY) -m agent_retraining.dev.simulate --agent $(AGENT) --start $(START) --days $(DAYS) $(if $(CORRUPT),--corrupt-day $(CORRUPT))

# Validate a spec (include/agents/<AGENT>.yaml, or AGENT_SPECS_DIR) and explain it: the model input columns, what
# the window and holdout hold at the least traffic a day may have and at EVENTS_PER_DAY, the YAML traps. A bad spec
# exits non-zero with the error naming the file, the field and the fix.
check-spec: venv
	$(PY) -m agent_retraining.dev.spec_check $(AGENT) $(if $(EVENTS_PER_DAY),--events-per-day $(EVENTS_PER_DAY))

# VERBOSE=1 prints Airflow's whole log instead of one line a task (kept in .local/logs/ either way).
retrain: s3-up airflow-db
	$(PY) scripts/retrain.py --agent $(AGENT) --day $(DAY) $(if $(VERBOSE),--verbose)

# Two weeks of logs up to yesterday; retrain on the day before (first deploy, no
# champion yet), then on yesterday (the new candidates against that champion).
demo: s3-up airflow-db
	$(PY) -m agent_retraining.dev.simulate --agent $(AGENT) --start $(START) --days $(DAYS)
	$(PY) scripts/retrain.py --agent $(AGENT) --day $(shell date -u -d "$(DAY) - 1 day" +%F) $(if $(VERBOSE),--verbose)
	$(PY) scripts/retrain.py --agent $(AGENT) --day $(DAY) $(if $(VERBOSE),--verbose)

# The closed loop: the agent acts every day in a moving world, the real DAG retrains it every night;
# a table, .local/loop/<scenario>.json and a PNG plot (<scenario>-seed<N> for SEED=N other than 0).
# SCENARIO: stationary, gradual_drift, sudden_shift, new_value, broken_release, intent_drift (AGENT=llm-router).
# WITHOUT=f1,f2: the same world, the agent's spec without those context features (the ablation).
# ESTIMATOR=snips|dr: the gate's policy-value estimator instead of the spec's (<scenario>-<estimator>.json).
comma := ,
SCENARIO ?= gradual_drift
SEED ?= 0
WITHOUT ?=
LOOP_DAYS := $(if $(filter command line,$(origin DAYS)),$(DAYS),30)
loop: s3-up airflow-db
	$(PY) scripts/loop.py --agent $(AGENT) --scenario $(SCENARIO) --days $(LOOP_DAYS) --seed $(SEED) \
		$(foreach feature,$(subst $(comma), ,$(WITHOUT)),--without $(feature)) $(if $(ESTIMATOR),--estimator $(ESTIMATOR))

# How often each policy-value estimator's 95% interval covers the true challenger-minus-champion difference, in
# SEEDS simulated worlds (the truth is the simulator's); a table and .local/coverage.json.
SEEDS ?= 200
coverage: venv
	$(PY) -m agent_retraining.dev.estimator_coverage --agent $(AGENT) --seeds $(SEEDS)

# How often the gate's nightly choice is right by the truth, SNIPS and DR judging the same SEEDS nights of the
# agent's drifting SCENARIO (the loop's counts, without its trajectories); a table and .local/decisions/.
decisions: venv
	$(PY) -m agent_retraining.dev.gate_decisions --agent $(AGENT) --scenario $(SCENARIO) --seeds $(SEEDS)

# Airflow with its UI on http://localhost:8080 (scheduler, API server, DAG processor,
# triggerer) on the embedded default; the admin password is printed on start.
airflow: s3-up airflow-db
	$(VENV)/bin/airflow standalone

# Issue #13's benchmark: cold vs warm nightly data gate at 1M (W1) and 4M events a day, every task's
# time and peak RSS, floors measured on the same bytes, the warm W1 DAG run; SCALES=1,4,10 adds W3
# (10M a day, hours). A table and .local/bench/nightly-run.json (nothing asserted). Then the cost of a text
# feature at 1M messages a day (bench/text_feature.py, .local/bench/text-feature.json).
SCALES ?= 1,4
REPEATS ?= 3
bench: s3-up airflow-db
	$(PY) bench/nightly_run.py --scales $(SCALES) --repeats $(REPEATS)
	$(PY) bench/text_feature.py --repeats $(REPEATS)

# Only the text feature's part of the benchmark (no S3, minutes).
bench-text: venv
	$(PY) bench/text_feature.py --repeats $(REPEATS)

# Any airflow command in the same environment, e.g. ARGS="dags list".
airflow-cli: airflow-db
	$(VENV)/bin/airflow $(ARGS)

# Debian's Chromium and its driver, for the browser test of the UI plugin (tests/e2e/test_ui_plugin.py).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@command -v chromium > /dev/null && command -v chromedriver > /dev/null || \
	  ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver > /dev/null)

# MLflow in an environment of its own (.local/mlflow-venv, from requirements-mlflow.txt): the pipeline speaks its
# REST API, so only the tests' local `mlflow server` and their checks through MLflow's own client need it.
MLFLOW_INSTALLED := .local/mlflow-venv/.installed-requirements
$(MLFLOW_INSTALLED): requirements-mlflow.txt
	scripts/mlflow_venv.sh > /dev/null

mlflow-venv: $(MLFLOW_INSTALLED)

test: venv browser node-client mlflow-venv
	$(PY) -m pytest

# The unit tier: no S3 server, no DAG run (tests/conftest.py marks every test unit, integration or e2e).
test-fast: venv node-client
	$(PY) -m pytest -m unit -q

lint: venv
	$(VENV)/bin/ruff check dags include plugins scripts tests bench
	$(VENV)/bin/ruff format --check dags include plugins scripts tests bench
