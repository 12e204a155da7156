#!/usr/bin/env bash
# Create .local/mlflow-venv from requirements-mlflow.txt when it is missing or the pins changed since it was made.
# MLflow has its own environment because its dependencies (SQLAlchemy, Flask, ...) would clash with Airflow's; the
# pipeline itself only talks to MLflow's REST API. Prints the environment's python.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.local/mlflow-venv
STAMP=$VENV/.installed-requirements
if [[ ! -f $STAMP ]] || ! cmp -s requirements-mlflow.txt "$STAMP"; then
  test -x $VENV/bin/python || python3 -m venv $VENV
  $VENV/bin/python -m pip install --quiet --upgrade pip
  $VENV/bin/python -m pip install --quiet -r requirements-mlflow.txt
  cp requirements-mlflow.txt "$STAMP"
fi
echo "$PWD/$VENV/bin/python"
