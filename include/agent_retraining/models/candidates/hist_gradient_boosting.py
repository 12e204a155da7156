"""scikit-learn's histogram gradient boosting, stored as its trees in JSON: each node's split feature, threshold,
side for missing values, children and leaf value, plus the baseline log-odds. sklearn offers only pickle, which
runs code when loaded; the trees are read back into sklearn's own tree predictor, so scores are sklearn's.

Early stopping is off by default: with it, the number of trees depends on a random validation split of the data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent_retraining.models.candidates import onnx_graphs
from agent_retraining.models.candidates.base import Candidate, Flag, Integer, Number, as_weighted_classes

# What a node needs for prediction on raw (unbinned) features, the project's features being numeric one-hot and
# scaled columns (never sklearn's categorical splits).
NODE_FIELDS = ("value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf")


@dataclass(frozen=True)
class TreesScorer:
    baseline: float
    predictors: list[Any]
    feature_count: int

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        no_categories = np.zeros((0, 8), dtype=np.uint32)
        feature_map = np.zeros(self.feature_count, dtype=np.uint32)
        rows = np.ascontiguousarray(matrix, dtype=np.float64)  # what sklearn's predict_proba converts to
        raw = np.full(len(rows), self.baseline)
        for predictor in self.predictors:
            raw += predictor.predict(rows, known_cat_bitsets=no_categories, f_idx_map=feature_map, n_threads=1)
        return 1.0 / (1.0 + np.exp(-raw))


class HistGradientBoosting(Candidate):
    name = "hist_gradient_boosting"
    framework = "sklearn_hist_gradient_boosting"
    artifact_name = "trees.json"
    defaults = {"learning_rate": 0.1, "max_iter": 200, "max_leaf_nodes": 31, "min_samples_leaf": 20,
                "l2_regularization": 0.0, "max_bins": 255, "early_stopping": False}  # fmt: skip
    parameters = {
        "learning_rate": Number(1e-4, 1.0), "max_iter": Integer(1, 10_000), "max_leaf_nodes": Integer(2, 4096),
        "max_depth": Integer(1, 64), "min_samples_leaf": Integer(1, 1_000_000), "l2_regularization": Number(0.0, 1e4),
        "max_bins": Integer(2, 255), "early_stopping": Flag(),
    }  # fmt: skip

    def fit(self, matrix, labels, seed: int, params: dict) -> tuple[bytes, dict]:
        from sklearn.ensemble import HistGradientBoostingClassifier

        rows, classes, weights = as_weighted_classes(matrix, labels)
        model = HistGradientBoostingClassifier(**params, random_state=seed).fit(rows, classes, sample_weight=weights)
        trees = [{field: predictor.nodes[field].tolist() for field in NODE_FIELDS}
                 for (predictor,) in model._predictors]  # fmt: skip  # binary: one tree per iteration
        state = {"baseline": float(model._baseline_prediction[0, 0]), "feature_count": int(matrix.shape[1]),
                 "trees": trees}  # fmt: skip
        return json.dumps(state).encode(), {**params, "seed": seed}

    def load(self, artifact: bytes, params: dict) -> TreesScorer:
        from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
        from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

        state = json.loads(artifact)
        predictors = []
        for tree in state["trees"]:
            nodes = np.zeros(len(tree["value"]), dtype=PREDICTOR_RECORD_DTYPE)
            for field in NODE_FIELDS:
                nodes[field] = tree[field]
            empty = np.zeros((0, 8), dtype=np.uint32)
            predictors.append(TreePredictor(nodes, empty, empty))
        return TreesScorer(float(state["baseline"]), predictors, int(state["feature_count"]))

    def to_onnx(self, artifact: bytes, params: dict, feature_count: int) -> bytes:
        state, trees = json.loads(artifact), onnx_graphs.Trees()
        for number, tree in enumerate(state["trees"]):
            for node in range(len(tree["value"])):
                if tree["is_leaf"][node]:
                    trees.leaf(number, node, tree["value"][node])
                else:
                    missing_left = bool(tree["missing_go_to_left"][node])
                    trees.split(number, node, tree["feature_idx"][node], tree["num_threshold"][node],
                                tree["left"][node], tree["right"][node], missing_left)  # fmt: skip
        return trees.graph(state["baseline"], feature_count)
