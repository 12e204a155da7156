"""Candidate models and their safe serialization.

Three frameworks fit the same matrix. Each artifact is stored in a format that
cannot run code when loaded (LightGBM's text format, a PyTorch state_dict read
with `weights_only=True`, the logistic regression's coefficients as JSON),
because the agent loads whatever the manifest points at. The formats are also
byte-for-byte reproducible, so a re-run of the same interval yields the same
artifact and the same content-addressed version.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent_retraining.features import encode, encoding_id, feature_columns, sample_rows, with_actions
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import Buckets, put_bytes, read_parquet, write_json
from agent_retraining.window import Window

SEARCH_ROWS = 50_000  # rows each LightGBM setting is fitted and scored on during the search
FRAMEWORKS = {"logistic_regression": "sklearn", "lightgbm": "lightgbm", "torch_mlp": "torch"}
ARTIFACT_NAMES = {"sklearn": "model.json", "lightgbm": "model.txt", "torch": "model.pt"}
# Defaults; a spec's training.hyperparameters replaces any of them per candidate.
DEFAULT_HYPERPARAMETERS = {
    "logistic_regression": {"C": 1.0, "max_iter": 2000},
    "lightgbm": {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 40,
        "lambda_l2": 1.0,
        "num_boost_round": 200,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
        "verbose": -1,
    },
    # Batches grow past batch_size when an epoch would take more than max_steps_per_epoch steps: per-step
    # overhead, not arithmetic, is what a small MLP costs on a CPU, and millions of rows need no more steps.
    "torch_mlp": {
        "hidden": [64, 32],
        "epochs": 8,
        "batch_size": 256,
        "max_steps_per_epoch": 500,
        "learning_rate": 1e-3,
    },
}


def hyperparameters(spec: AgentSpec, name: str) -> dict:
    """The candidate's defaults with the spec's overrides (which the spec checked: spec.CANDIDATE_PARAMETERS)."""
    return {**DEFAULT_HYPERPARAMETERS[name], **spec.training.hyperparameters.get(name, {})}


@dataclass(frozen=True)
class LoadedModel:
    """A model that gives P(reward = 1) for rows of the feature matrix."""

    framework: str
    model: Any

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        if self.framework == "sklearn":
            # predict_proba's formula without its upcast of the float32 matrix to a float64 copy
            logits = matrix @ self.model.coef_[0].astype(matrix.dtype) + self.model.intercept_[0]
            return 1.0 / (1.0 + np.exp(-logits))
        if self.framework == "lightgbm":
            return self.model.predict(matrix)
        import torch

        with torch.no_grad():
            return torch.sigmoid(self.model(torch.from_numpy(np.ascontiguousarray(matrix, np.float32)))).numpy()[:, 0]


SCORE_BLOCK_ROWS = 250_000  # rows scored at once: 155 feature columns make that about 150 MB a matrix


def action_scores(spec: AgentSpec, context: np.ndarray, models: list[LoadedModel]) -> list[np.ndarray]:
    """P(reward = 1) of every action for every row, per model: shape (rows, actions) each.

    Each action's input matrix is built once per block of rows and shared by all models; blocks of
    SCORE_BLOCK_ROWS keep that matrix (rows x every feature column) small however big the holdout is.
    """
    scores = [np.empty((len(context), len(spec.actions))) for _ in models]
    for start in range(0, len(context), SCORE_BLOCK_ROWS):
        block = context[start : start + SCORE_BLOCK_ROWS]
        for action in range(len(spec.actions)):
            matrix = with_actions(spec, block, np.full(len(block), action))
            for model, score in zip(models, scores, strict=True):
                score[start : start + len(block), action] = model.predict(matrix)
    return scores


def _mlp(input_dim: int, hidden: list[int]):
    import torch

    layers, width = [], input_dim
    for size in hidden:
        layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
        width = size
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))


def fit(name: str, matrix: np.ndarray, labels: np.ndarray, seed: int, params: dict) -> tuple[bytes, dict]:
    """Train one candidate; returns the serialized artifact and what is needed to load it."""
    if name == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=params["C"], max_iter=params["max_iter"], random_state=seed).fit(matrix, labels)
        state = {
            "coef": model.coef_.tolist(),
            "intercept": model.intercept_.tolist(),
            "classes": model.classes_.tolist(),
        }
        return json.dumps(state).encode(), {**params, "seed": seed}
    if name == "lightgbm":
        import lightgbm as lgb

        booster_params = {k: v for k, v in params.items() if k != "num_boost_round"} | {"seed": seed}
        booster = lgb.train(booster_params, lgb.Dataset(matrix, labels), num_boost_round=params["num_boost_round"])
        return booster.model_to_string().encode(), {**params, "seed": seed}
    if name == "torch_mlp":
        import torch

        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        model = _mlp(matrix.shape[1], params["hidden"])
        optimizer = torch.optim.Adam(model.parameters(), lr=params["learning_rate"])
        loss_fn = torch.nn.BCEWithLogitsLoss()
        inputs, targets = torch.from_numpy(matrix), torch.from_numpy(labels)[:, None]
        batch_size = max(params["batch_size"], -(-len(inputs) // params["max_steps_per_epoch"]))
        for _ in range(params["epochs"]):
            for batch in torch.randperm(len(inputs), generator=generator).split(batch_size):
                optimizer.zero_grad()
                loss_fn(model(inputs[batch]), targets[batch]).backward()
                optimizer.step()
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        return buffer.getvalue(), {**params, "input_dim": matrix.shape[1], "seed": seed}
    raise ValueError(f"unknown candidate '{name}' (known: {', '.join(FRAMEWORKS)})")


def search_lightgbm(spec: AgentSpec, table, params: dict) -> tuple[dict, list[dict]]:
    """Fit each of the spec's LightGBM settings on the older training days, score it on the newest; the best
    by log loss wins.

    Settings are compared on samples of SEARCH_ROWS rows: enough to rank them, and the search stays a small
    share of the stage however much an agent logs. Ties go to the earlier setting, so a re-run picks the same.
    """
    import pyarrow.compute as pc
    from sklearn.metrics import log_loss

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
        predicted = load("lightgbm", artifact, trial_params).predict(check_matrix)
        trials.append({"setting": setting, "log_loss": float(log_loss(check_labels, predicted, labels=[0, 1]))})
    best = min(range(len(trials)), key=lambda i: (trials[i]["log_loss"], i))
    return {**params, **trials[best]["setting"]}, trials


def load(framework: str, artifact: bytes, params: dict) -> LoadedModel:
    """Rebuild a model from its artifact without executing anything stored in it."""
    if framework == "sklearn":
        from sklearn.linear_model import LogisticRegression

        state = json.loads(artifact)
        model = LogisticRegression()
        model.coef_, model.intercept_ = np.array(state["coef"]), np.array(state["intercept"])
        model.classes_, model.n_features_in_ = np.array(state["classes"]), len(state["coef"][0])
        return LoadedModel(framework, model)
    if framework == "lightgbm":
        import lightgbm as lgb

        return LoadedModel(framework, lgb.Booster(model_str=artifact.decode()))
    if framework == "torch":
        import torch

        model = _mlp(params["input_dim"], params["hidden"])
        model.load_state_dict(torch.load(io.BytesIO(artifact), weights_only=True))
        return LoadedModel(framework, model.eval())
    raise ValueError(f"unknown framework '{framework}'")


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
    framework = FRAMEWORKS[name]
    prefix = f"{run_dir}candidates/{name}/"
    artifact_key = prefix + ARTIFACT_NAMES[framework]
    put_bytes(s3, buckets.artifacts, artifact_key, artifact)
    metadata = {
        "candidate": name,
        "framework": framework,
        "params": params,
        "search": search,
        "artifact_key": artifact_key,
        "sha256": hashlib.sha256(artifact).hexdigest(),
        "size": len(artifact),
        "train_rows": len(labels),
        "feature_count": len(feature_columns(spec)),
        "encoding_id": encoding_id(spec),
        "trained_on": {"first": window.first.isoformat(), "last": window.last.isoformat()},
    }
    # In the task log, not in the metadata: a re-run of the interval must write the same metadata.
    logging.getLogger(__name__).info("%s trained on %d rows; seconds: %s", name, len(labels), seconds)
    write_json(s3, buckets.artifacts, prefix + "metadata.json", metadata)
    return metadata
