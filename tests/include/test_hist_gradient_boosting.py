"""The fourth candidate: scikit-learn's HistGradientBoostingClassifier, kept as JSON trees instead of a pickle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent_retraining.models.candidates import CANDIDATES, for_framework
from agent_retraining.spec import SpecError, parse_spec
from tests.include.test_spec import _with

MODEL = CANDIDATES["hist_gradient_boosting"]


def _data(rows: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(rows, 6)).astype(np.float32)
    matrix[::13, 2] = np.nan  # missing values take the side each split learned for them
    logits = 1.5 * matrix[:, 0] - np.nan_to_num(matrix[:, 2]) * matrix[:, 1]
    labels = (rng.random(rows) < 1 / (1 + np.exp(-logits))).astype(np.float64)
    return matrix, labels


def test_the_stored_trees_score_exactly_as_sklearns_own_model():
    from sklearn.ensemble import HistGradientBoostingClassifier

    matrix, labels = _data()
    params = {**MODEL.defaults, "max_iter": 40}
    artifact, stored = MODEL.fit(matrix, labels, 7, params)
    reference = HistGradientBoostingClassifier(**params, random_state=7).fit(matrix, labels)
    fresh, _ = _data(500, seed=1)
    assert np.allclose(MODEL.load(artifact, stored).predict(fresh), reference.predict_proba(fresh)[:, 1], atol=1e-12)
    assert for_framework(MODEL.framework) is MODEL


def test_the_artifact_is_data_only_and_the_same_bytes_on_a_rerun():
    matrix, labels = _data()
    artifact, _ = MODEL.fit(matrix, labels, 3, {**MODEL.defaults, "max_iter": 20})
    state = json.loads(artifact)
    assert set(state) == {"baseline", "feature_count", "trees"}
    assert len(state["trees"]) == 20
    assert MODEL.fit(matrix, labels, 3, {**MODEL.defaults, "max_iter": 20})[0] == artifact
    with pytest.raises(UnicodeDecodeError, match="can't decode"):
        MODEL.load(b"\x80\x04K\x01.", {})  # a pickle is not JSON: refused, never unpickled


def test_a_spec_may_choose_it_and_set_only_its_own_parameters():
    spec = parse_spec(_with(lambda r: r.update(candidates=["hist_gradient_boosting"])), "x.yaml")
    assert spec.candidates == ["hist_gradient_boosting"]
    with pytest.raises(SpecError, match="'warm_start' is not a parameter this project trains hist_gradient_boosting"):
        parse_spec(_with(lambda r: r["training"]["hyperparameters"].update(
            hist_gradient_boosting={"warm_start": True})), "x.yaml")  # fmt: skip
    with pytest.raises(SpecError, match="max_bins: 1000 is not an integer from 2 to 255"):
        parse_spec(_with(lambda r: r["training"]["hyperparameters"].update(
            hist_gradient_boosting={"max_bins": 1000})), "x.yaml")  # fmt: skip
