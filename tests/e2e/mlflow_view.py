"""What MLflow's own client sees, printed as JSON; test_mlflow_tracking.py runs it in MLflow's environment
(.local/mlflow-venv), because MLflow is not installed beside Airflow.

    python mlflow_view.py <tracking uri> runs <experiment name>
    python mlflow_view.py <tracking uri> registry <registered model name>
"""

import json
import sys

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException


def runs(client: MlflowClient, experiment: str) -> dict:
    """Every run of the experiment by its name: metrics, params, tags, status and how many points roc_auc has."""
    found = client.get_experiment_by_name(experiment)
    return {
        run.data.tags.get("mlflow.runName"): {
            "metrics": run.data.metrics,
            "params": run.data.params,
            "tags": run.data.tags,
            "status": run.info.status,
            "roc_auc_points": len(client.get_metric_history(run.info.run_id, "roc_auc")),
        }
        for run in client.search_runs([found.experiment_id])
    }


def registry(client: MlflowClient, name: str) -> dict:
    """The versions the champion and challenger aliases point at, and how many versions the model has."""

    def alias(which: str) -> dict | None:
        try:
            version = client.get_model_version_by_alias(name, which)
        except MlflowException:
            return None
        return {"version": version.version, "source": version.source, "tags": version.tags}

    versions = client.search_model_versions(f"name = '{name}'")
    return {"champion": alias("champion"), "challenger": alias("challenger"), "versions": len(versions)}


if __name__ == "__main__":
    uri, what, name = sys.argv[1:]
    print(json.dumps({"runs": runs, "registry": registry}[what](MlflowClient(uri), name)))
