"""Graded and delayed rewards without a server: the spec, the feedback records, their join, training on fractions,
the metrics of a graded reward, and the window a delay shifts."""

from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from agent_retraining.spec import SpecError
from tests.conftest import spec_variant

DAY = date(2026, 3, 10)


def _graded(spec, **reward):
    gate = {**spec.gate.model_dump(), "primary_metric": "log_loss",
            "floors": {**spec.gate.floors.model_dump(), "min_roc_auc": None}}  # fmt: skip
    return spec_variant(spec, reward={"type": "graded", "range": [1, 5], **reward}, gate=gate)


def test_a_graded_reward_has_a_range_and_metrics_that_fit_it(support_bot):
    graded = _graded(support_bot)
    assert graded.reward.scaled(np.array([1.0, 3.0, 5.0])).tolist() == [0.0, 0.5, 1.0]
    assert graded.reward.in_units(0.5) == 3.0
    assert graded.reward.in_units(0.25, difference=True) == 1.0
    with pytest.raises(ValueError, match="range is for graded rewards"):
        spec_variant(support_bot, reward={"type": "binary", "range": [1, 5]})
    with pytest.raises(ValueError, match="below"):
        _graded(support_bot, range=[5, 1])
    with pytest.raises(ValueError, match="ROC AUC needs a binary reward"):
        spec_variant(support_bot, reward={"type": "graded", "range": [0, 1]})  # the example's min_roc_auc floor
    with pytest.raises(ValueError, match="reward_model 'hist_gradient_boosting' is not one of the candidates"):
        spec_variant(support_bot, gate={**support_bot.gate.model_dump(),
                                        "policy_value": {"reward_model": "hist_gradient_boosting"}})  # fmt: skip


def test_a_delay_shifts_the_window_to_the_days_whose_feedback_has_had_its_time(support_bot):
    from agent_retraining.window import Window

    assert Window.ending(DAY, support_bot).last == DAY
    delayed = spec_variant(support_bot, reward={"type": "binary", "delay_days": 2})
    window = Window.ending(DAY, delayed)
    assert (window.first, window.last) == (date(2026, 3, 2), date(2026, 3, 8))


def _feedback_lines(*records) -> bytes:
    import json

    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)


def test_every_bad_feedback_record_is_a_bad_line_naming_its_field(support_bot):
    from agent_retraining.datagate.feedback import parse_feedback_object

    spec = _graded(support_bot, delay_days=1)
    ts = "2026-03-11T08:00:00Z"
    body = _feedback_lines(
        {"event_id": "e1", "reward": 4.5, "ts": ts},
        b"{not json",
        {"event_id": "e2", "reward": 6, "ts": ts},
        {"event_id": "", "reward": 3, "ts": ts},
        {"event_id": "e3", "reward": True, "ts": ts},
        {"event_id": "e4", "reward": 2, "ts": "yesterday"},
        b'{"event_id": "e5", "reward": NaN, "ts": "2026-03-11T08:00:00Z"}',
        b'{"event_id": "e6", "reward": -1' + b"0" * 400 + b', "ts": "2026-03-11T08:00:00Z"}',
    )
    parsed = parse_feedback_object("support-bot/feedback/dt=2026-03-10/part-0.jsonl", body, spec)
    bad = parsed.bad_lines
    assert parsed.table.column("event_id").to_pylist() == ["e1"]
    assert parsed.lines == 8
    fields = [(2, None), (3, "feedback.reward"), (4, "feedback.event_id"), (5, "feedback.reward"), (6, "feedback.ts"),
              (7, None), (8, "feedback.reward")]  # fmt: skip
    assert [(b["line"], b["field"]) for b in bad] == fields
    assert "within the spec's reward.range [1, 5], got 6" in bad[1]["message"]
    binary = spec_variant(support_bot, reward={"type": "binary", "delay_days": 1})
    parsed = parse_feedback_object("k.jsonl", _feedback_lines({"event_id": "e1", "reward": 0.5, "ts": ts}), binary)
    assert "must be 0 or 1" in parsed.bad_lines[0]["message"]


def _day(event_ids, rewards):
    from agent_retraining.datagate.reading import DayOfLogs

    table = pa.table({"event_id": event_ids, "reward": pa.array(rewards, pa.float64()),
                      "source_key": ["d.jsonl"] * len(event_ids)})  # fmt: skip
    return DayOfLogs(DAY, table, [{"key": "d.jsonl", "etag": "x", "size": 1}], [], [], len(event_ids), 0)


def _records(*pairs):
    from agent_retraining.datagate.feedback import SCHEMA
    from agent_retraining.datagate.reading import DayOfLogs

    rows = [{"event_id": e, "reward": r, "ts": f"2026-03-1{i % 3}T00:00:00Z", "source_key": "f.jsonl",
             "source_line": i + 1} for i, (e, r) in enumerate(pairs)]  # fmt: skip
    return DayOfLogs(DAY, pa.Table.from_pylist(rows, schema=SCHEMA), [{"key": "f.jsonl", "etag": "y", "size": 1}], [],
                     [], len(rows), 0)  # fmt: skip


def _by_rule(checks):
    return {c["rule"]: c for c in checks}


@pytest.mark.parametrize("missing", ["zero", "drop"])
def test_decisions_take_their_feedback_and_the_rest_count_as_the_worst_or_are_left_out(support_bot, missing):
    from agent_retraining.datagate.feedback import join_feedback

    spec = spec_variant(support_bot, reward={"type": "binary", "delay_days": 2, "missing": missing,
                                             "min_feedback_rate": 0.5})  # fmt: skip
    records = _records(("b", 1.0), ("c", 0.0), ("d", 1.0))
    joined, checks, summary = join_feedback(_day(["a", "b", "c", "d"], [None] * 4), records, spec)
    rewards = dict(zip(joined.table.column("event_id").to_pylist(), joined.table.column("reward").to_pylist(),
                       strict=True))  # fmt: skip
    answered = {"b": 1.0, "c": 0.0, "d": 1.0}
    assert rewards == ({"a": 0.0, **answered} if missing == "zero" else answered)
    assert all(c["success"] for c in checks)
    assert summary["with_reward"] == 3
    assert summary["decisions"] == 4
    assert "3 of 4 decisions (75.0%) have a reward" in _by_rule(checks)["feedback_rate"]["message"]
    assert [s["key"] for s in joined.sources] == ["d.jsonl", "f.jsonl"]  # both in the day's fingerprint


def test_two_rewards_for_one_decision_unknown_events_and_a_silent_stream_are_named(support_bot):
    from agent_retraining.datagate.feedback import join_feedback

    spec = spec_variant(support_bot, reward={"type": "binary", "delay_days": 1})
    _, checks, _ = join_feedback(_day(["a", "b", "c"], [1.0, None, None]),
                                 _records(("a", 0.0), ("b", 1.0), ("b", 0.0), ("zz", 1.0)), spec)  # fmt: skip
    by = _by_rule(checks)
    assert not by["feedback_duplicate"]["success"]
    assert by["feedback_duplicate"]["tier"] == "block"
    assert {e["value"] for e in by["feedback_duplicate"]["examples"]} == {"a", "b"}
    assert "2 decision(s) have two or more rewards" in by["feedback_duplicate"]["message"]
    assert not by["feedback_unknown_event"]["success"]
    assert by["feedback_unknown_event"]["examples"] == [{"key": "f.jsonl", "line": 4, "value": "zz"}]
    _, checks, _ = join_feedback(_day(["a", "b", "c"], [None] * 3), _records(), spec)
    assert not _by_rule(checks)["feedback_rate"]["success"]  # no feedback at all: the stream is broken


@pytest.mark.parametrize("name", ["logistic_regression", "lightgbm", "hist_gradient_boosting", "torch_mlp"])
def test_every_candidate_learns_a_graded_reward_as_a_fraction(name):
    from agent_retraining.models.training import fit, load

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(4000, 6)).astype(np.float32)
    expected = 1 / (1 + np.exp(-(matrix[:, 0] - 0.5 * matrix[:, 1])))
    labels = np.clip(expected + rng.normal(0, 0.1, 4000), 0, 1).astype(np.float32)  # fractions, not classes
    from agent_retraining.models.candidates import candidate

    artifact, params = fit(name, matrix, labels, 0, candidate(name).defaults)
    predicted = load(candidate(name).framework, artifact, params).predict(matrix)
    assert predicted.min() >= 0
    assert predicted.max() <= 1
    assert np.corrcoef(predicted, expected)[0, 1] > 0.9
    assert abs(predicted.mean() - labels.mean()) < 0.03  # calibrated to the fractions, not to 0/1 thresholds


def test_a_graded_holdout_has_no_auc_and_errors_in_the_rewards_units(support_bot):
    from agent_retraining.evaluate.estimators import LoggedRows, greedy_estimates
    from agent_retraining.evaluate.metrics import model_metrics

    spec = _graded(support_bot)
    rewards = np.array([0.0, 0.25, 0.5, 1.0])  # 1, 2, 3 and 5 on the spec's scale
    per_action = np.array([[0.25, 0.1], [0.25, 0.1], [0.5, 0.1], [0.75, 0.1]])
    rows = LoggedRows(rewards, np.full(4, 0.5), np.zeros(4, int), per_action)
    metrics = model_metrics(per_action, rows, spec.reward, greedy_estimates(per_action, rows), "dr", {})
    assert metrics["roc_auc"] is None
    assert metrics["mae"] == pytest.approx(4 * (0.25 + 0 + 0 + 0.25) / 4)  # 0.125 of the range is half a point
    assert metrics["rmse"] == pytest.approx(4 * np.sqrt((0.25**2 + 0.25**2) / 4))
    assert metrics["log_loss"] > 0
    assert metrics["log_loss_skill"] is not None
    assert set(metrics["policy_values"]) == {"snips", "dr"}


def test_the_simulator_scores_graded_decisions_around_the_truth(support_bot):
    from agent_retraining.dev.simulate import outcomes

    spec = _graded(support_bot)
    expected = np.random.default_rng(1).random(20_000)
    scores = outcomes(spec, expected, np.random.default_rng(2))
    assert scores.min() >= 1
    assert scores.max() <= 5
    assert spec.reward.scaled(scores).mean() == pytest.approx(expected.mean(), abs=0.01)
    assert len(np.unique(scores)) > 100  # graded, not two values


def test_a_spec_file_with_a_graded_delayed_reward_parses(tmp_path):
    from agent_retraining.spec import load_agent, parse_spec

    text = tmp_path / "x.yaml"
    raw = load_agent("support-bot").model_dump(mode="json")
    raw["reward"] = {"type": "graded", "range": [1, 5], "delay_days": 3, "missing": "drop"}
    import yaml

    raw["gate"]["primary_metric"], raw["gate"]["floors"]["min_roc_auc"] = "rmse", None
    spec = parse_spec(yaml.safe_dump(raw), str(text))
    assert spec.reward.delayed
    assert spec.reward.missing == "drop"
    raw["reward"]["missing"] = "guess"
    with pytest.raises(SpecError, match="reward.missing"):
        parse_spec(yaml.safe_dump(raw), str(text))
