"""The gate against known ground truth, with real models on the real local S3 server.

Simulated logs have a known reward function. Models trained on the real
rewards are truly better than models trained on shuffled rewards, so we know
which side of every comparison must win.
"""

import hashlib
import json
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from agent_retraining.evaluation import evaluate_and_decide
from agent_retraining.features import build_split, context_columns, feature_columns
from agent_retraining.manifest import deploy, fetch_verified, read_manifest
from agent_retraining.simulate import simulate
from agent_retraining.snapshot import Window, take_snapshot
from agent_retraining.storage import put_bytes, read_parquet, write_parquet
from agent_retraining.training import train_candidate
from tests.conftest import spec_variant

DAY = date(2026, 4, 5)


@pytest.fixture(scope="module")
def judged(support_bot, s3, buckets):
    """One holdout, and candidates trained on true, fully shuffled, and chat-shuffled rewards."""
    spec = spec_variant(support_bot, agent_id="judge-bot", training={"window_days": 5, "holdout_days": 1, "seed": 2})
    simulate(s3, buckets.logs, spec, date(2026, 4, 1), 5, events_per_day=1500, seed=11)
    window = Window.ending(DAY, spec)
    snapshot = take_snapshot(s3, buckets, spec, window)
    split = build_split(s3, buckets, spec, window, snapshot["snapshot_key"])
    train = read_parquet(s3, buckets.artifacts, split["train_key"])
    rng = np.random.default_rng(0)

    def shuffled(rows: pa.Table, mask: np.ndarray) -> pa.Table:
        rewards = rows.column("reward").to_numpy().copy()
        rewards[mask] = rng.permutation(rewards[mask])
        return rows.set_column(rows.schema.get_field_index("reward"), "reward", pa.array(rewards))

    chat = pc.equal(train.column("ctx_channel"), "chat").to_numpy(zero_copy_only=False)
    variants = {
        "true": train,
        "shuffled": shuffled(train, np.ones(train.num_rows, bool)),
        "chat": shuffled(train, chat),
    }
    candidates = {}
    for label, table in variants.items():
        variant = spec_variant(spec, agent_id=f"judge-{label}")  # its own artifact prefix
        key = f"judge-bot/train-{label}.parquet"
        write_parquet(s3, buckets.artifacts, key, table)
        candidates[label] = [train_candidate(s3, buckets, variant, window, name, key) for name in spec.candidates]
    return spec, window, split["holdout_key"], candidates


def _decide(judged, s3, buckets, agent_id: str, label: str) -> dict:
    spec, window, holdout_key, candidates = judged
    return evaluate_and_decide(
        s3, buckets, spec_variant(spec, agent_id=agent_id), window, holdout_key, candidates[label]
    )


def _failed(decision: dict) -> set[str]:
    return {r["rule"] for r in decision["rules"] if not r["passed"]}


def test_cold_start_refuses_a_challenger_below_the_floors(judged, s3, buckets):
    decision = _decide(judged, s3, buckets, "judge-cold", "shuffled")
    assert not decision["deploy"]
    assert "floor_roc_auc" in _failed(decision)
    assert "no model is live yet" in decision["champion"]["note"]


def test_a_truly_better_challenger_replaces_a_bad_champion(judged, s3, buckets):
    bad = _decide(judged, s3, buckets, "judge-up", "shuffled")
    deploy(s3, buckets, "judge-up", bad, "install-a-bad-champion")
    decision = _decide(judged, s3, buckets, "judge-up", "true")
    assert decision["deploy"], decision["reason"]
    assert (
        decision["metrics"]["champion"]["roc_auc"]
        < 0.6
        < decision["metrics"][decision["winner"]["candidate"]]["roc_auc"]
    )
    assert decision["champion"]["version"] == read_manifest(s3, buckets, "judge-up")[0]["version"]


def test_a_truly_worse_challenger_is_refused_with_the_rules_named(judged, s3, buckets):
    good = _decide(judged, s3, buckets, "judge-down", "true")
    assert good["deploy"]  # cold start above the floors deploys
    deploy(s3, buckets, "judge-down", good, "install-a-good-champion")
    decision = _decide(judged, s3, buckets, "judge-down", "shuffled")
    assert not decision["deploy"]
    assert {"no_regression_roc_auc", "policy_value"} <= _failed(decision)
    assert "no_regression_roc_auc" in decision["reason"]


def _edited_logistic_regression(judged, s3, buckets, label: str, edit) -> dict:
    """The true-reward logistic regression with `edit` applied to its coefficients, stored as a candidate artifact."""
    trained = next(c for c in judged[3]["true"] if c["candidate"] == "logistic_regression")
    state = json.loads(fetch_verified(s3, buckets.artifacts, trained["artifact_key"], trained["sha256"]))
    coefficients = np.array(state["coef"][0])
    edit(coefficients)
    state["coef"] = [coefficients.tolist()]
    artifact = json.dumps(state).encode()
    key = f"judge-bot/edited/{label}/model.json"
    put_bytes(s3, buckets.artifacts, key, artifact)
    return {**trained, "artifact_key": key, "sha256": hashlib.sha256(artifact).hexdigest(), "size": len(artifact)}


def test_a_challenger_better_on_auc_but_worse_on_policy_value_is_refused(judged, s3, buckets):
    """AUC on logged rows and the greedy policy's value measure different things; the gate must look at both.

    Most logged rows carry the logging policy's own choice, so AUC hardly sees the
    other actions. The champion is the true-reward model with the sign of its
    context-only terms flipped: it scores tickets badly (low AUC) but shifts every
    action of a ticket alike, so it still picks the right actions. The challenger
    is the true-reward model plus a constant bonus on the most rarely logged
    action: right on almost every logged row (higher AUC than the champion), but
    its greedy policy picks that action nearly everywhere.
    """
    spec, window, holdout_key, _ = judged
    logged = read_parquet(s3, buckets.artifacts, holdout_key).column("action").to_pylist()
    rarest = min(spec.actions, key=logged.count)
    context_terms = len(context_columns(spec))  # the matrix starts with the context block, then the action columns
    rarest_column = feature_columns(spec).index(f"action={rarest}")

    def flip_context_terms(coefficients):
        coefficients[:context_terms] *= -1

    def favour_rarest(coefficients):
        coefficients[rarest_column] += 4.0

    variant = spec_variant(spec, agent_id="judge-policy")
    champion = _edited_logistic_regression(judged, s3, buckets, "context-flipped", flip_context_terms)
    installed = evaluate_and_decide(s3, buckets, variant, window, holdout_key, [champion])
    deploy(s3, buckets, "judge-policy", installed, "install-a-champion-that-acts-well")
    challenger = _edited_logistic_regression(judged, s3, buckets, f"favours-{rarest}", favour_rarest)
    decision = evaluate_and_decide(s3, buckets, variant, window, holdout_key, [challenger])

    mine, theirs = decision["metrics"]["logistic_regression"], decision["metrics"]["champion"]
    assert mine["roc_auc"] > theirs["roc_auc"] + 0.05
    assert mine["policy_value_ci"][1] < theirs["policy_value"]  # worse beyond the estimate's own uncertainty
    assert not decision["deploy"]
    assert _failed(decision) == {"policy_value"}  # every accuracy rule passed: the policy rule alone refuses it
    assert "policy_value" in decision["reason"]


def test_a_challenger_that_is_worse_on_one_slice_is_refused(judged, s3, buckets):
    good = _decide(judged, s3, buckets, "judge-slice", "true")
    deploy(s3, buckets, "judge-slice", good, "install-a-good-champion")
    decision = _decide(judged, s3, buckets, "judge-slice", "chat")
    assert "slice_roc_auc:channel=chat" in _failed(decision)
    assert not decision["deploy"]
    chat = decision["metrics"]["champion"]["slices"]["channel=chat"]
    assert chat["rows"] >= judged[0].gate.slices.min_rows


def test_the_same_interval_gives_the_same_metrics_and_winner(judged, s3, buckets):
    spec, window, holdout_key, candidates = judged
    variant = spec_variant(spec, agent_id="judge-true")
    again = [
        train_candidate(s3, buckets, variant, window, name, "judge-bot/train-true.parquet") for name in spec.candidates
    ]
    assert [c["sha256"] for c in again] == [c["sha256"] for c in candidates["true"]]
    first = _decide(judged, s3, buckets, "judge-repeat", "true")
    second = evaluate_and_decide(s3, buckets, spec_variant(spec, agent_id="judge-repeat"), window, holdout_key, again)
    assert second["metrics"] == first["metrics"]
    assert second["winner"] == first["winner"]


def test_a_backfill_records_what_it_would_decide_and_leaves_the_manifest_alone(judged, s3, buckets):
    from agent_retraining.contract import run_prefix
    from agent_retraining.evaluation import RunContext
    from agent_retraining.storage import read_json

    spec, window, holdout_key, candidates = judged
    bad = _decide(judged, s3, buckets, "judge-backfill", "shuffled")
    deploy(s3, buckets, "judge-backfill", bad, "install-a-bad-champion")
    _, etag = read_manifest(s3, buckets, "judge-backfill")
    variant = spec_variant(spec, agent_id="judge-backfill")
    decision = evaluate_and_decide(
        s3, buckets, variant, window, holdout_key, candidates["true"], RunContext("backfill")
    )
    assert not decision["deploy"]
    assert decision["would_deploy"]  # the better model would have won a normal run
    assert _failed(decision) == {"run_may_move_manifest"}
    assert decision["reason"].startswith("backfill, manifest left alone; the decision would have been: deploy")
    assert read_json(s3, buckets.artifacts, run_prefix("judge-backfill", window.last) + "decision.json") == decision
    assert read_manifest(s3, buckets, "judge-backfill")[1] == etag
