"""The `train` task: one registered candidate (models/candidates/) fitted on the run's train set, its native
artifact, its ONNX export and their metadata stored; and loading a native artifact back for evaluation."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

import numpy as np

from agent_retraining.models.candidates import candidate, for_framework
from agent_retraining.models.candidates.base import Scorer, cross_entropy
from agent_retraining.models.encoding import encoding_of
from agent_retraining.models.features import encode, encoding_id, feature_columns, sample_rows
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import Buckets, put_bytes, read_parquet, write_json
from agent_retraining.window import Window

ONNX_NAME = "model.onnx"  # beside the native artifact, in the run's folder and in the models bucket
SEARCH_ROWS = 50_000  # rows each LightGBM setting is fitted and scored on during the search


def hyperparameters(spec: AgentSpec, name: str) -> dict:
    """The candidate's defaults with the spec's overrides (which the spec checked against the candidate)."""
    return {**candidate(name).defaults, **spec.training.hyperparameters.get(name, {})}


@dataclass(frozen=True)
class LoadedModel:
    """A model that gives the expected reward on [0, 1] (P(reward = 1) when binary) for rows of the feature matrix."""

    framework: str
    model: Scorer

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return self.model.predict(matrix)


def fit(name: str, matrix: np.ndarray, labels: np.ndarray, seed: int, params: dict) -> tuple[bytes, dict]:
    """Train one candidate; returns the serialized artifact and what is needed to load it."""
    return candidate(name).fit(matrix, labels, seed, params)


def load(framework: str, artifact: bytes, params: dict) -> LoadedModel:
    """Rebuild a model from its artifact without executing anything stored in it."""
    return LoadedModel(framework, for_framework(framework).load(artifact, params))


def search_lightgbm(spec: AgentSpec, table, params: dict) -> tuple[dict, list[dict]]:
    """Fit each of the spec's LightGBM settings on the older training days, score it on the newest; the best
    by log loss wins.

    Settings are compared on samples of SEARCH_ROWS rows: enough to rank them, and the search stays a small
    share of the stage however much an agent logs. Ties go to the earlier setting, so a re-run picks the same.
    """
    import pyarrow.compute as pc

    newest = pc.equal(table.column("dt"), pc.max(table.column("dt")))
    seed = spec.training.seed
    fit_rows = sample_rows(table.filter(pc.invert(newest)), SEARCH_ROWS, seed)
    check_rows = sample_rows(table.filter(newest), SEARCH_ROWS, seed)
    if fit_rows.num_rows == 0:
        return params, []
    fit_matrix, fit_labels = encode(spec, fit_rows)
    check_matrix, check_labels = encode(spec, check_rows)
    trials = []
    for setting in spec.training.lightgbm_search:
        artifact, trial_params = fit("lightgbm", fit_matrix, fit_labels, spec.training.seed, {**params, **setting})
        predicted = np.clip(load("lightgbm", artifact, trial_params).predict(check_matrix), 1e-7, 1 - 1e-7)
        trials.append({"setting": setting, "log_loss": cross_entropy(check_labels, predicted)})
    best = min(range(len(trials)), key=lambda i: (trials[i]["log_loss"], i))
    return {**params, **trials[best]["setting"]}, trials


def train_candidate(
    s3, buckets: Buckets, spec: AgentSpec, window: Window, name: str, train_key: str, run_dir: str
) -> dict:
    """Fit one candidate on the run's train set and store its artifact and metadata; log where the time went."""
    clock = time.perf_counter()
    seconds = {}

    def lap(step: str) -> None:
        nonlocal clock
        seconds[step] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()

    table = read_parquet(s3, buckets.artifacts, train_key)
    lap("read")
    params, search = hyperparameters(spec, name), []
    if name == "lightgbm" and spec.training.lightgbm_search:
        params, search = search_lightgbm(spec, table, params)
        lap("search")
    matrix, labels = encode(spec, table)
    lap("encode")
    artifact, params = fit(name, matrix, labels, spec.training.seed, params)
    lap("fit")
    registered = candidate(name)
    portable = registered.to_onnx(artifact, params, matrix.shape[1])
    lap("onnx")
    prefix = f"{run_dir}candidates/{name}/"
    artifact_key = prefix + registered.artifact_name
    put_bytes(s3, buckets.artifacts, artifact_key, artifact)
    put_bytes(s3, buckets.artifacts, prefix + ONNX_NAME, portable)
    metadata = {
        "candidate": name,
        "framework": registered.framework,
        "params": params,
        "search": search,
        "artifact_key": artifact_key,
        "sha256": hashlib.sha256(artifact).hexdigest(),
        "size": len(artifact),
        "train_rows": len(labels),
        "onnx": {"key": prefix + ONNX_NAME, "sha256": hashlib.sha256(portable).hexdigest(), "size": len(portable)},
        "feature_count": len(feature_columns(spec)),
        "encoding_id": encoding_id(spec),
        "encoding": encoding_of(spec),
        "trained_on": {"first": window.first.isoformat(), "last": window.last.isoformat()},
    }
    # In the task log, not in the metadata: a re-run of the interval must write the same metadata.
    logging.getLogger(__name__).info("%s trained on %d rows; seconds: %s", name, len(labels), seconds)
    write_json(s3, buckets.artifacts, prefix + "metadata.json", metadata)
    return metadata
