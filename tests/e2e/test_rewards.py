"""Rewards as agents get them, in real nightly runs on the local S3 server: a graded reward (a CSAT of 1 to 5)
trains, is judged and deploys; delayed feedback (contract v2) is joined to its decisions by the day it answers,
trained on once its delay has passed with what arrived by then, judged again when more arrives, and refused by
name when it repeats or names no decision."""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from agent_retraining.contract import feedback_day_prefix, run_prefix
from agent_retraining.dev.simulate import World, day_table, write_day
from agent_retraining.manifest import read_manifest
from agent_retraining.records import Decision, WindowVerdict, read_record
from agent_retraining.storage import get_bytes, put_bytes, read_json, read_parquet
from tests.conftest import spec_variant

START = date(2026, 9, 1)
EVENTS = 1500


def _small(spec, agent_id: str, reward: dict, **changes):
    training = {**spec.training.model_dump(), "window_days": 3, "holdout_days": 1, "lightgbm_search": []}
    return spec_variant(spec, agent_id=agent_id, reward=reward, training=training, **changes)


@pytest.fixture(scope="module")
def graded_spec(support_bot):
    gate = {**support_bot.gate.model_dump(), "primary_metric": "rmse",
            "floors": {**support_bot.gate.floors.model_dump(), "min_roc_auc": None}}  # fmt: skip
    return _small(support_bot, "csat-bot", {"type": "graded", "range": [1, 5]}, gate=gate,
                  candidates=["logistic_regression", "lightgbm"])  # fmt: skip


def test_a_graded_agent_trains_is_judged_against_its_champion_and_deploys(install, s3, buckets, graded_spec):
    from agent_retraining.dev.dag_runner import run_night

    spec, world = install(graded_spec), World.for_spec(graded_spec, 0)
    days = [START + timedelta(days=n) for n in range(4)]
    keys = [write_day(s3, buckets.logs, spec, day, day_table(world, day, EVENTS, 1))[0] for day in days]
    logged = [json.loads(line)["reward"] for line in gzip.decompress(get_bytes(s3, buckets.logs, keys[0])[0]).split()]
    assert min(logged) >= 1
    assert max(logged) <= 5
    assert len(set(logged)) > 50  # scores, as the agent logs them
    dag_run, first = run_night(spec, days[2])
    assert dag_run.state == "success", first
    assert first["outcome"] == "deployed", first["decision"]["reason"]
    dag_run, second = run_night(spec, days[3])
    assert dag_run.state == "success", second
    run_dir = run_prefix(spec.agent_id, days[3], dag_run.run_id)
    decision = read_record(s3, buckets.artifacts, run_dir + "decision.json", Decision)
    live, _ = read_manifest(s3, buckets, spec.agent_id)
    assert decision["champion"]["version"] is not None  # judged against the first night's model
    assert "no_regression_roc_auc" not in {r["rule"] for r in decision["rules"]}  # no AUC to regress on
    assert {r["rule"] for r in decision["rules"]} >= {"no_regression_log_loss", "no_regression_brier", "policy_value"}
    winner = decision["metrics"][decision["winner"]["candidate"]]
    assert winner["roc_auc"] is None
    assert 0 < winner["rmse"] < 1.5  # in CSAT points
    assert decision["estimator"] == {"name": "dr", "reward_model": "champion"}  # trained before this holdout
    assert set(decision["policy_value_differences"]) == {"snips", "dr"}
    holdout = read_json(s3, buckets.artifacts, run_dir + "features/split.json")["holdout_key"]
    stored = read_parquet(s3, buckets.artifacts, holdout).column("reward")
    assert pc.min(stored).as_py() >= 0  # learnt and valued on [0, 1]
    assert pc.max(stored).as_py() <= 1
    html = get_bytes(s3, buckets.artifacts, run_dir + "report.html")[0].decode()
    assert "in the reward&#39;s units" in html or "in the reward's units" in html
    assert "self-normalised doubly robust" in html
    assert "decided" in html
    assert live["metrics"]["policy_value"] is not None


def _decisions_and_feedback(s3, buckets, world, spec, day: date, seed: int) -> list[dict]:
    """A day of decisions logged without their reward, and the feedback records their rewards become (each 20
    hours after its decision)."""
    table = day_table(world, day, EVENTS, seed)
    feedback = [{"event_id": e, "reward": r, "ts": (datetime.fromisoformat(t) + timedelta(hours=20)).isoformat()}
                for e, r, t in zip(table.column("event_id").to_pylist(), table.column("reward").to_pylist(),
                                   table.column("ts").to_pylist(), strict=True)]  # fmt: skip
    unrewarded = pa.nulls(table.num_rows, pa.float64())
    write_day(s3, buckets.logs, spec, day, table.set_column(table.schema.get_field_index("reward"), "reward",
                                                            unrewarded))  # fmt: skip
    return feedback


def _arrive(s3, buckets, spec, day: date, name: str, records: list[dict]) -> None:
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    put_bytes(s3, buckets.logs, feedback_day_prefix(spec.agent_id, day) + name, body)


def _feedback_of(verdict: dict, day: date) -> dict:
    return next(c for c in verdict["checks"] if c["rule"] == "feedback_rate" and c["day"] == day.isoformat())


def test_delayed_feedback_is_trained_on_after_its_delay_judged_again_when_more_arrives_and_refused_when_wrong(
    install, s3, buckets, support_bot
):
    from agent_retraining.dev.dag_runner import run_night

    spec = install(_small(support_bot, "thumbs-bot", {"type": "binary", "delay_days": 2, "missing": "zero"},
                          candidates=["logistic_regression"]))  # fmt: skip
    world = World.for_spec(spec, 0)
    days = [START + timedelta(days=n) for n in range(3)]  # decision days; the run of days[2] + 2 judges them
    feedback = {day: _decisions_and_feedback(s3, buckets, world, spec, day, n) for n, day in enumerate(days)}
    for day in days[:2]:
        _arrive(s3, buckets, spec, day, "arrival-1.jsonl", feedback[day])
    # The newest day's feedback comes over three days: half on its day, 30% the next, 10% after its delay.
    newest = feedback[days[2]]
    _arrive(s3, buckets, spec, days[2], "arrival-1.jsonl", newest[: EVENTS // 2])
    _arrive(s3, buckets, spec, days[2], "arrival-2.jsonl", newest[EVENTS // 2 : EVENTS * 8 // 10])
    run_day = days[2] + timedelta(days=2)

    dag_run, first = run_night(spec, run_day)
    assert dag_run.state == "success", first
    run_dir = run_prefix(spec.agent_id, run_day, dag_run.run_id)
    verdict = read_record(s3, buckets.artifacts, run_dir + "validation.json", WindowVerdict)
    assert verdict["window"] == {"first": days[0].isoformat(), "last": days[2].isoformat()}
    said = _feedback_of(verdict, days[2])["message"]
    assert f"{EVENTS * 8 // 10:,} of {EVENTS:,} decisions (80.0%) have a reward from 2 feedback object(s)" in said
    assert "count as the worst reward" in said
    holdout = read_parquet(s3, buckets.artifacts, read_json(s3, buckets.artifacts, run_dir + "features/split.json")[
        "holdout_key"])  # fmt: skip
    arrived = newest[: EVENTS * 8 // 10]
    assert holdout.num_rows == EVENTS  # every decision of the held-out day: the 300 without a reward count as 0
    assert pc.sum(holdout.column("reward")).as_py() == sum(r["reward"] for r in arrived)
    decision = read_record(s3, buckets.artifacts, run_dir + "decision.json", Decision)
    assert decision["holdout_rows"] == EVENTS  # judged, on what had arrived

    _arrive(s3, buckets, spec, days[2], "arrival-3.jsonl", newest[EVENTS * 8 // 10 : EVENTS * 9 // 10])
    dag_run, again = run_night(spec, run_day)
    assert dag_run.state == "success", again
    run_dir = run_prefix(spec.agent_id, run_day, dag_run.run_id)
    verdict = read_record(s3, buckets.artifacts, run_dir + "validation.json", WindowVerdict)
    reused = {d["day"]: d["reused"] for d in verdict["days"]}
    assert reused == {days[0].isoformat(): True, days[1].isoformat(): True, days[2].isoformat(): False}
    assert "(90.0%) have a reward from 3 feedback object(s)" in _feedback_of(verdict, days[2])["message"]

    # A second reward for a decision of days[1], and a record for an event nobody logged, under its day.
    wrong = [{**feedback[days[1]][0], "reward": 1 - feedback[days[1]][0]["reward"]},
             {"event_id": "never-logged", "reward": 1, "ts": "2026-09-03T01:00:00Z"}]  # fmt: skip
    _arrive(s3, buckets, spec, days[1], "arrival-2.jsonl", wrong)
    dag_run, third = run_night(spec, run_day)
    run_dir = run_prefix(spec.agent_id, run_day, dag_run.run_id)
    verdict = read_record(s3, buckets.artifacts, run_dir + "validation.json", WindowVerdict)
    left_out = {d["day"]: " ".join(d["why"]) for d in verdict["left_out"]}
    assert set(left_out) == {days[1].isoformat()}, verdict["left_out"]
    assert "[feedback_duplicate] " in left_out[days[1].isoformat()]
    assert "[feedback_unknown_event] " in left_out[days[1].isoformat()]
    assert "never-logged" in left_out[days[1].isoformat()]
    assert feedback_day_prefix(spec.agent_id, days[1]) + "arrival-2.jsonl" in left_out[days[1].isoformat()]
    decision = read_record(s3, buckets.artifacts, run_dir + "decision.json", Decision)  # went on without that day
    assert decision["holdout_rows"] == EVENTS, third["verdict"]
