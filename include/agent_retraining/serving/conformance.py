"""The serving contract's test vectors (test_vectors/ beside this file): a manifest with a live model and a canary,
their ONNX files, and contexts with what every client must compute from them: the encoded rows, each action's
score, the greedy action, the propensities and the canary routing. A client in another language checks itself
against them (clients/node/ does, in the test suite); agent_retraining.dev.test_vectors writes them."""

from __future__ import annotations

import json
from pathlib import Path

FOLDER = Path(__file__).with_name("test_vectors")
SCORE_TOLERANCE = 1e-6  # float32 scores from two builds of onnxruntime may differ in their last bits
EXPLORATION = 0.1


def load_vectors(folder: Path = FOLDER) -> tuple[dict, dict[str, str], list[dict]]:
    """(the manifest, the file name of each ONNX key it names, the cases)."""
    vectors = json.loads((folder / "vectors.json").read_text())
    manifest = json.loads((folder / "manifest.json").read_text())
    return manifest, vectors["files"], vectors["cases"]


def routing_cases(folder: Path = FOLDER) -> list[dict]:
    return json.loads((folder / "vectors.json").read_text())["routing"]
