from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from agent_retraining.datagate.reading import parse_log_object
from agent_retraining.dev.simulate import World, day_events
from agent_retraining.models.candidates import CANDIDATES
from agent_retraining.models.features import encode, feature_columns
from agent_retraining.models.training import fit, hyperparameters, load
from agent_retraining.window import Window


def _table(spec, days=3, rows=300):
    import json

    tables = []
    for offset in range(days):
        day = date(2026, 3, 1 + offset)
        events = day_events(World.for_spec(spec, 0), day, rows, 0)
        body = "".join(json.dumps(e) + "\n" for e in events).encode()
        tables.append(parse_log_object("k.jsonl", body, spec, day).table)
    return pa.concat_tables(tables)


def test_encoding_is_fixed_by_the_spec(support_bot):
    table = _table(support_bot, days=1, rows=50)
    matrix, labels = encode(support_bot, table)
    assert matrix.shape == (50, len(feature_columns(support_bot)))
    assert matrix.dtype == np.float32
    assert set(np.unique(labels)) <= {0.0, 1.0}
    assert np.array_equal(matrix, encode(support_bot, table.slice(0, 50))[0])
    action_columns = [i for i, name in enumerate(feature_columns(support_bot)) if name.startswith("action=")]
    assert len(action_columns) == len(support_bot.actions)
    assert (matrix[:, action_columns].sum(axis=1) == 1).all()  # exactly the logged action is set


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_each_candidate_learns_and_round_trips_through_its_safe_format(support_bot, name):
    from sklearn.metrics import roc_auc_score

    matrix, labels = encode(support_bot, _table(support_bot))
    artifact, params = fit(name, matrix, labels, 3, hyperparameters(support_bot, name))
    model = load(CANDIDATES[name].framework, artifact, params)
    predictions = model.predict(matrix)
    assert ((predictions > 0) & (predictions < 1)).all()
    assert roc_auc_score(labels, predictions) > 0.7
    assert np.allclose(load(CANDIDATES[name].framework, artifact, params).predict(matrix), predictions)
    assert fit(name, matrix, labels, 3, hyperparameters(support_bot, name))[0] == artifact  # same bytes on a re-run


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_each_candidates_onnx_export_scores_what_the_native_model_scores_on_a_holdout(support_bot, name):
    """Agents outside Python serve the export: on rows it was not trained on, every action's score must be the
    native model's within the serving contract's tolerance, and the same artifact must give the same file."""
    from agent_retraining.models.encoding import action_scores, encoding_of
    from agent_retraining.models.features import encode_context
    from agent_retraining.serving.portable_model import TOLERANCE, PortableModel

    tables = _table(support_bot, days=4, rows=400)
    train, holdout = tables.slice(0, 1200), tables.slice(1200)
    matrix, labels = encode(support_bot, train)
    artifact, params = fit(name, matrix, labels, 3, hyperparameters(support_bot, name))
    exported = CANDIDATES[name].to_onnx(artifact, params, matrix.shape[1])
    assert CANDIDATES[name].to_onnx(artifact, params, matrix.shape[1]) == exported
    native, portable = load(CANDIDATES[name].framework, artifact, params), PortableModel(exported)
    context = encode_context(support_bot, holdout)
    native_scores, onnx_scores = action_scores(encoding_of(support_bot), context, [native, portable])
    assert native_scores.std() > 0.01  # a real model, not a constant
    assert np.abs(onnx_scores - native_scores).max() <= TOLERANCE


def test_a_pickled_torch_artifact_is_not_loaded(support_bot):
    import io
    import pickle

    evil = io.BytesIO()
    pickle.dump({"not": "weights", "f": print}, evil)
    with pytest.raises(Exception, match="(?i)weights_only|unpickl"):
        load("torch", evil.getvalue(), {"input_dim": 3, "hidden": [4]})


def test_spec_hyperparameters_replace_the_defaults_and_typos_are_refused(support_bot):
    import yaml

    from agent_retraining.spec import SpecError, parse_spec
    from tests.conftest import spec_variant

    assert hyperparameters(support_bot, "torch_mlp")["epochs"] == 8
    tuned = spec_variant(support_bot, training={**support_bot.training.model_dump(), "hyperparameters": {
        "logistic_regression": {"C": 0.1}}})  # fmt: skip
    assert hyperparameters(tuned, "logistic_regression") == {"C": 0.1, "max_iter": 2000}
    raw = support_bot.model_dump()
    raw["training"]["hyperparameters"] = {"torch_mlp": {"epoch": 3}}
    with pytest.raises(SpecError, match=r"hyperparameters.torch_mlp: 'epoch' is not a parameter this project"):
        parse_spec(yaml.safe_dump(raw), "typo.yaml")


def test_the_lightgbm_search_is_bounded_and_deterministic(support_bot):
    from agent_retraining.models.training import search_lightgbm

    table = _table(support_bot)
    params, trials = search_lightgbm(support_bot, table, hyperparameters(support_bot, "lightgbm"))
    assert [t["setting"] for t in trials] == support_bot.training.lightgbm_search
    best = min(trials, key=lambda t: t["log_loss"])["setting"]
    assert {k: params[k] for k in best} == best
    assert search_lightgbm(support_bot, table, hyperparameters(support_bot, "lightgbm")) == (params, trials)


def _split(s3, buckets, spec, window, corrupt_days=frozenset()):
    from agent_retraining.contract import run_prefix
    from agent_retraining.dev.simulate import simulate
    from agent_retraining.models.features import build_split
    from tests.conftest import validate_window

    simulate(s3, buckets.logs, spec, window.first, len(window.days), 800, corrupt_days=corrupt_days)
    run_dir = run_prefix(spec.agent_id, window.last, "test")
    validate_window(s3, buckets, spec, window, run_dir)
    return build_split(s3, buckets, spec, window, run_dir)


def test_a_training_row_cap_samples_the_training_days_and_keeps_every_holdout_row(support_bot, s3, buckets):
    """Big agents train on a bounded sample; the holdout, which the gate judges on, is never sampled."""
    from agent_retraining.models.features import build_split
    from agent_retraining.storage import read_parquet
    from tests.conftest import spec_variant

    training = {**support_bot.training.model_dump(), "window_days": 3, "max_train_rows": 1000}
    spec = spec_variant(support_bot, agent_id="capped-bot", training=training)
    window = Window(date(2026, 3, 1), date(2026, 3, 3), 1)
    split = _split(s3, buckets, spec, window)
    train = read_parquet(s3, buckets.artifacts, split["train_key"])
    assert (split["train_rows"], split["train_rows_in_window"], split["holdout_rows"]) == (1000, 1600, 800)
    assert train.num_rows == 1000
    assert set(train.column("dt").to_pylist()) == {date(2026, 3, 1), date(2026, 3, 2)}
    assert train.column("ts").to_pylist() == sorted(train.column("ts").to_pylist())  # still in time order
    holdout = read_parquet(s3, buckets.artifacts, split["holdout_key"])
    assert set(holdout.column("dt").to_pylist()) == {date(2026, 3, 3)}
    again = build_split(s3, buckets, spec, window, split["train_key"].split("features/")[0])
    assert read_parquet(s3, buckets.artifacts, again["train_key"]).equals(train)  # the same sample on a re-run


def test_a_refused_past_day_is_left_out_of_the_split_and_named(support_bot, s3, buckets):
    from agent_retraining.storage import read_parquet
    from tests.conftest import spec_variant

    training = {**support_bot.training.model_dump(), "window_days": 4, "holdout_days": 2}
    spec = spec_variant(support_bot, agent_id="split-bot", training=training)
    window = Window(date(2026, 3, 1), date(2026, 3, 4), 2)
    split = _split(s3, buckets, spec, window, corrupt_days=frozenset({date(2026, 3, 2)}))
    assert split["train_days"] == ["2026-03-01"]
    assert split["holdout_days"] == ["2026-03-03", "2026-03-04"]
    assert [d["day"] for d in split["left_out_days"]] == ["2026-03-02"]
    assert (split["train_rows"], split["holdout_rows"]) == (800, 1600)
    holdout = read_parquet(s3, buckets.artifacts, split["holdout_key"])
    assert holdout.column("ts").to_pylist() == sorted(holdout.column("ts").to_pylist())


def test_scores_are_the_same_whatever_the_block_of_rows_scored_at_once(support_bot, monkeypatch):
    """Evaluation scores big holdouts a block of rows at a time to bound memory; blocks must not change a score."""
    from agent_retraining.models import encoding
    from agent_retraining.models.features import encode_context

    table = _table(support_bot, days=1, rows=101)
    matrix, labels = encode(support_bot, table)
    name = "logistic_regression"
    artifact, params = fit(name, matrix, labels, 3, hyperparameters(support_bot, name))
    model = load(CANDIDATES[name].framework, artifact, params)
    context = encode_context(support_bot, table)
    described = encoding.encoding_of(support_bot)
    whole = encoding.action_scores(described, context, [model])[0]
    row_bytes = 4 * len(encoding.columns(described))
    monkeypatch.setattr(encoding, "SCORE_BLOCK_BYTES", 7 * row_bytes)  # 101 rows: 14 full blocks and a short one
    blocked = encoding.action_scores(described, context, [model])[0]
    assert np.allclose(blocked, whole, rtol=0, atol=1e-6)  # the same up to float32 summation order
    assert whole.shape == (101, len(support_bot.actions))
