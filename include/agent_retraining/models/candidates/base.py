"""What a candidate model is to the pipeline: a name, its artifact's format, its default hyperparameters and the
ones a spec may set (each with a closed range), and fit / load. The pipeline never branches on a candidate's name.

An artifact must not be able to run code when it is loaded (the agent loads whatever the manifest points at), and
must be byte-for-byte the same for the same data and seed, so that a re-run yields the same content-addressed
version. Each is also exported to ONNX, for agents that do not run Python (docs/serving-contract.md). Heavy libraries
are imported inside the methods: specs and DAG files import this registry.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


class Scorer(Protocol):
    def predict(self, matrix) -> Any:
        """The expected reward on [0, 1] (P(reward = 1) for a binary one) for each row of the feature matrix
        (float32, rows x feature columns)."""


def fractional(labels) -> bool:
    """Whether the labels are a graded reward's fractions rather than 0s and 1s."""
    import numpy as np

    return not bool(np.isin(labels, (0.0, 1.0)).all())


def cross_entropy(labels, predicted) -> float:
    """Log loss with labels anywhere in [0, 1] (sklearn's wants classes); the same number for 0/1 labels.
    `predicted` must already be clipped away from 0 and 1."""
    import numpy as np

    return float(-(labels * np.log(predicted) + (1 - labels) * np.log(1 - predicted)).mean())


def as_weighted_classes(matrix, labels):
    """Fractional labels for a classifier that only takes classes: each row twice, as a 1 weighted by its label and
    as a 0 weighted by the rest. The weighted log likelihood of the pair is the row's cross-entropy against its
    fraction, so the fit is the one a fractional-label logistic loss would give. 0/1 labels pass unchanged, with no
    weights (a binary agent trains exactly as before)."""
    import numpy as np

    if not fractional(labels):
        return matrix, labels, None
    classes = np.concatenate([np.ones(len(labels), labels.dtype), np.zeros(len(labels), labels.dtype)])
    return np.concatenate([matrix, matrix]), classes, np.concatenate([labels, 1 - labels])


@dataclass(frozen=True)
class Number:
    low: float
    high: float
    integer: bool = False

    def problem(self, value: Any) -> str | None:
        kinds = (int,) if self.integer else (int, float)
        if type(value) in kinds and math.isfinite(value) and self.low <= value <= self.high:
            return None
        return f"{'an integer' if self.integer else 'a number'} from {self.low} to {self.high}"


@dataclass(frozen=True)
class Integer(Number):
    integer: bool = True


@dataclass(frozen=True)
class Choice:
    values: frozenset

    def problem(self, value: Any) -> str | None:
        return None if value in self.values else f"one of {sorted(self.values)}"


@dataclass(frozen=True)
class Flag:
    def problem(self, value: Any) -> str | None:
        return None if type(value) is bool else "true or false"


@dataclass(frozen=True)
class Layers:
    """Widths of hidden layers: a short list of bounded integers."""

    low: int
    high: int
    max_layers: int = 8

    def problem(self, value: Any) -> str | None:
        widths = isinstance(value, list) and 1 <= len(value) <= self.max_layers
        if widths and all(type(v) is int and self.low <= v <= self.high for v in value):
            return None
        return f"a list of 1 to {self.max_layers} layer widths from {self.low} to {self.high}"


class Candidate(ABC):
    """One model family the gate can choose from; subclasses register in `candidates/__init__.py`."""

    name: ClassVar[str]  # as the spec's `candidates` names it
    framework: ClassVar[str]  # the artifact's format, recorded in metadata and manifests; unique per candidate
    artifact_name: ClassVar[str]  # file name of the artifact in the models bucket
    defaults: ClassVar[dict[str, Any]]  # hyperparameters; a spec's training.hyperparameters replaces any of them
    parameters: ClassVar[dict[str, Number | Choice | Flag | Layers]]  # what a spec may set, and to what

    def check(self, where: str, values: dict[str, Any]) -> None:
        """Refuse a hyperparameter this project does not train with, or a value outside its range."""
        for key, value in values.items():
            rule = self.parameters.get(key)
            if rule is None:
                raise ValueError(f"{where}: '{key}' is not a parameter this project trains {self.name} with "
                                 f"(allowed: {', '.join(self.parameters)})")  # fmt: skip
            wanted = rule.problem(value)
            if wanted:
                raise ValueError(f"{where}.{key}: {value!r} is not {wanted}")

    @abstractmethod
    def fit(self, matrix, labels, seed: int, params: dict) -> tuple[bytes, dict]:
        """Train on the feature matrix; the artifact's bytes and the parameters `load` needs with it."""

    @abstractmethod
    def load(self, artifact: bytes, params: dict) -> Scorer:
        """Rebuild the model from its artifact without executing anything stored in it."""

    @abstractmethod
    def to_onnx(self, artifact: bytes, params: dict, feature_count: int) -> bytes:
        """The same model as an ONNX graph of onnx_graphs.py's signature, from the artifact alone (the same artifact
        always gives the same bytes)."""
