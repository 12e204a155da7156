"""scikit-learn's logistic regression, stored as its coefficients in JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from agent_retraining.models.candidates import onnx_graphs
from agent_retraining.models.candidates.base import Candidate, Integer, Number, as_weighted_classes


@dataclass(frozen=True)
class LinearScorer:
    coef: np.ndarray
    intercept: np.float64

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        # predict_proba's formula without its upcast of the float32 matrix to a float64 copy
        logits = matrix @ self.coef.astype(matrix.dtype) + self.intercept
        return 1.0 / (1.0 + np.exp(-logits))


class LogisticRegression(Candidate):
    name = "logistic_regression"
    framework = "sklearn"
    artifact_name = "model.json"
    defaults = {"C": 1.0, "max_iter": 2000}
    parameters = {"C": Number(1e-6, 1e6), "max_iter": Integer(1, 100_000)}

    def fit(self, matrix, labels, seed: int, params: dict) -> tuple[bytes, dict]:
        from sklearn.linear_model import LogisticRegression as Model

        rows, classes, weights = as_weighted_classes(matrix, labels)
        model = Model(C=params["C"], max_iter=params["max_iter"], random_state=seed).fit(rows, classes, weights)
        state = {
            "coef": model.coef_.tolist(),
            "intercept": model.intercept_.tolist(),
            "classes": model.classes_.tolist(),
        }
        return json.dumps(state).encode(), {**params, "seed": seed}

    def load(self, artifact: bytes, params: dict) -> LinearScorer:
        state = json.loads(artifact)
        return LinearScorer(np.array(state["coef"][0]), np.float64(state["intercept"][0]))

    def to_onnx(self, artifact: bytes, params: dict, feature_count: int) -> bytes:
        state = json.loads(artifact)
        return onnx_graphs.dense([(np.array(state["coef"]), np.array(state["intercept"]))], feature_count)
