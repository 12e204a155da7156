"""Whether a candidate's ONNX export scores what the native model scores: agents outside Python serve the export,
so a model whose export differs is not the model the gate judged, and it is not deployable."""

from __future__ import annotations

import numpy as np

from agent_retraining.models.artifacts import ArtifactError, fetch_verified
from agent_retraining.models.encoding import action_scores
from agent_retraining.serving.portable_model import TOLERANCE, PortableModel

CHECK_ROWS = 20_000  # holdout rows compared (a seeded uniform sample), each with every action


def check_rows(rows: int, seed: int) -> np.ndarray:
    """The holdout rows every candidate's export is compared on: the same ones for all, and on a re-run."""
    if rows <= CHECK_ROWS:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=CHECK_ROWS, replace=False))


def portable_rule(s3, bucket: str, candidate: dict, encoding: dict, context: np.ndarray, native: np.ndarray) -> dict:
    """The `portable` rule: the largest |ONNX - native| P(reward = 1) over the given holdout rows (their context
    block) and every action, against TOLERANCE; `native` holds the native scores of those rows."""
    portable = candidate.get("onnx")
    if portable is None:
        return {
            "rule": "portable",
            "passed": False,
            "detail": "no ONNX export (trained before portable models): agents outside Python cannot serve it",
        }
    try:
        model = PortableModel(fetch_verified(s3, bucket, portable["key"], portable["sha256"]))
        scores = action_scores(encoding, context, [model])[0]
    except (ArtifactError, ValueError) as error:
        return {"rule": "portable", "passed": False, "detail": f"the ONNX export cannot be used: {error}"}
    difference = float(np.abs(scores - native).max()) if native.size else 0.0
    return {
        "rule": "portable", "passed": difference <= TOLERANCE, "max_difference": difference,
        "detail": f"ONNX export vs native P(reward=1): largest difference {difference:.2g} (tolerance {TOLERANCE:g}) "
                  f"over {len(native)} holdout rows x {native.shape[1]} actions",
    }  # fmt: skip
