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

from agent_retraining.contract import run_prefix
from agent_retraining.dev.simulate import simulate
from agent_retraining.evaluate.decide import evaluate_and_decide
from agent_retraining.manifest import judged_against, read_manifest
from agent_retraining.models.artifacts import fetch_verified
from agent_retraining.models.candidates import CANDIDATES
from agent_retraining.models.encoding import context_columns, encoding_of
from agent_retraining.models.features import build_split, feature_columns
from agent_retraining.models.training import train_candidate
from agent_retraining.release.deploy import deploy
from agent_retraining.storage import put_bytes, read_parquet, write_json, write_parquet
from agent_retraining.window import Window
from tests.conftest import spec_variant, validate_window

DAY = date(2026, 4, 5)
# Every agent id this module evaluates as: each is a run of judge-bot's window, so each run folder gets its verdict.
EVALUATED_AS = ("judge-cold", "judge-up", "judge-down", "judge-policy", "judge-slice", "judge-repeat",
                "judge-backfill", "judge-thin", "judge-portable")  # fmt: skip


def _run_dir(agent_id: str) -> str:
    """The one run folder each agent of this module writes its records to."""
    return run_prefix(agent_id, DAY, "test")


def install_champion(s3, buckets, agent_id: str, decision: dict, run_id: str) -> dict:
    """Install the decision's winner as the live model regardless of the gate, as an operator setting up a scenario.

    `deploy` only carries out decisions that say deploy, judged against the manifest as it is now;
    this hands it such a copy of `decision`, whatever the gate said.
    """
    now = judged_against(*read_manifest(s3, buckets, agent_id))
    return deploy(s3, buckets, agent_id, {**decision, "deploy": True, "judged_against": now}, run_id)


@pytest.fixture(scope="module")
def judged(support_bot, s3, buckets):
    """One holdout, and candidates trained on true, fully shuffled, and chat-shuffled rewards."""
    spec = spec_variant(support_bot, agent_id="judge-bot", training={"window_days": 5, "holdout_days": 1, "seed": 2})
    simulate(s3, buckets.logs, spec, date(2026, 4, 1), 5, events_per_day=1500, seed=11)
    window = Window.ending(DAY, spec)
    verdict = validate_window(s3, buckets, spec, window, _run_dir(spec.agent_id))
    for agent_id in EVALUATED_AS:
        write_json(s3, buckets.artifacts, _run_dir(agent_id) + "validation.json", verdict)
    split = build_split(s3, buckets, spec, window, _run_dir(spec.agent_id))
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
        candidates[label] = [
            train_candidate(s3, buckets, variant, window, name, key, _run_dir(variant.agent_id))
            for name in spec.candidates
        ]
    return spec, window, split["holdout_key"], candidates


def _decide(judged, s3, buckets, agent_id: str, label: str) -> dict:
    spec, window, holdout_key, candidates = judged
    return evaluate_and_decide(
        s3, buckets, spec_variant(spec, agent_id=agent_id), window, holdout_key, candidates[label], _run_dir(agent_id)
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
    assert not bad["deploy"]  # below the floors: only an operator puts it live
    install_champion(s3, buckets, "judge-up", bad, "install-a-bad-champion")
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


def _edited_logistic_regression(judged, s3, buckets, label: str, edit, export: bool = True) -> dict:
    """The true-reward logistic regression with `edit` applied to its coefficients, stored as a candidate artifact
    with its ONNX export (or, without `export`, still naming the unedited model's)."""
    spec, trained = judged[0], next(c for c in judged[3]["true"] if c["candidate"] == "logistic_regression")
    state = json.loads(fetch_verified(s3, buckets.artifacts, trained["artifact_key"], trained["sha256"]))
    coefficients = np.array(state["coef"][0])
    edit(coefficients)
    state["coef"] = [coefficients.tolist()]
    artifact = json.dumps(state).encode()
    key = f"judge-bot/edited/{label}/model.json"
    put_bytes(s3, buckets.artifacts, key, artifact)
    edited = {**trained, "artifact_key": key, "sha256": hashlib.sha256(artifact).hexdigest(), "size": len(artifact)}
    if export:
        portable = CANDIDATES["logistic_regression"].to_onnx(artifact, trained["params"], len(feature_columns(spec)))
        put_bytes(s3, buckets.artifacts, key + ".onnx", portable)
        edited["onnx"] = {"key": key + ".onnx", "sha256": hashlib.sha256(portable).hexdigest()}
    return edited


def test_a_model_whose_onnx_export_scores_differently_is_not_deployable(judged, s3, buckets):
    """Agents outside Python serve the export: a candidate whose export is not the model the gate judged (here the
    export of its coefficients before an edit) fails `portable` and is never deployed, however good it is."""

    def nudge(coefficients):
        coefficients[:3] += 0.5

    spec, window, holdout_key, _ = judged
    stale = _edited_logistic_regression(judged, s3, buckets, "stale-export", nudge, export=False)
    decision = evaluate_and_decide(s3, buckets, spec_variant(spec, agent_id="judge-portable"), window, holdout_key,
                                   [stale], _run_dir("judge-portable"))  # fmt: skip
    portable = next(r for r in decision["rules"] if r["rule"] == "portable")
    assert not portable["passed"]
    assert portable["max_difference"] > 1e-3
    assert not decision["deploy"]
    assert "portable (ONNX export vs native" in decision["reason"]
    fresh = _edited_logistic_regression(judged, s3, buckets, "fresh-export", nudge)
    decision = evaluate_and_decide(s3, buckets, spec_variant(spec, agent_id="judge-portable"), window, holdout_key,
                                   [fresh], _run_dir("judge-portable"))  # fmt: skip
    portable = next(r for r in decision["rules"] if r["rule"] == "portable")
    assert portable["passed"]
    assert portable["max_difference"] <= 1e-5


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
    context_terms = len(context_columns(encoding_of(spec)))  # the matrix starts with the context block
    rarest_column = feature_columns(spec).index(f"action={rarest}")

    def flip_context_terms(coefficients):
        coefficients[:context_terms] *= -1

    def favour_rarest(coefficients):
        coefficients[rarest_column] += 4.0

    variant = spec_variant(spec, agent_id="judge-policy")
    champion = _edited_logistic_regression(judged, s3, buckets, "context-flipped", flip_context_terms)
    installed = evaluate_and_decide(s3, buckets, variant, window, holdout_key, [champion], _run_dir(variant.agent_id))
    # Its flipped context terms miss the calibration floor, so the gate keeps it out; the scenario needs it live.
    install_champion(s3, buckets, "judge-policy", installed, "install-a-champion-that-acts-well")
    challenger = _edited_logistic_regression(judged, s3, buckets, f"favours-{rarest}", favour_rarest)
    decision = evaluate_and_decide(s3, buckets, variant, window, holdout_key, [challenger], _run_dir(variant.agent_id))

    mine, theirs = decision["metrics"]["logistic_regression"], decision["metrics"]["champion"]
    assert mine["roc_auc"] > theirs["roc_auc"] + 0.05
    assert mine["policy_value_ci"][1] < theirs["policy_value"]  # worse beyond the estimate's own uncertainty
    assert not decision["deploy"]
    assert _failed(decision) == {"policy_value"}  # every accuracy rule passed: the policy rule alone refuses it
    assert "policy_value" in decision["reason"]


def test_a_challenger_that_is_worse_on_one_slice_is_refused(judged, s3, buckets):
    good = _decide(judged, s3, buckets, "judge-slice", "true")
    assert good["deploy"], good["reason"]
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
        train_candidate(s3, buckets, variant, window, name, "judge-bot/train-true.parquet", _run_dir(variant.agent_id))
        for name in spec.candidates
    ]
    assert [c["sha256"] for c in again] == [c["sha256"] for c in candidates["true"]]
    first = _decide(judged, s3, buckets, "judge-repeat", "true")
    repeat = spec_variant(spec, agent_id="judge-repeat")
    second = evaluate_and_decide(s3, buckets, repeat, window, holdout_key, again, _run_dir(repeat.agent_id))
    assert second["metrics"] == first["metrics"]
    assert second["winner"] == first["winner"]


def test_a_backfill_records_what_it_would_decide_and_leaves_the_manifest_alone(judged, s3, buckets):
    from agent_retraining.evaluate.rules import RunContext
    from agent_retraining.storage import read_json

    spec, window, holdout_key, candidates = judged
    bad = _decide(judged, s3, buckets, "judge-backfill", "shuffled")
    assert not bad["deploy"]
    install_champion(s3, buckets, "judge-backfill", bad, "install-a-bad-champion")
    _, etag = read_manifest(s3, buckets, "judge-backfill")
    variant = spec_variant(spec, agent_id="judge-backfill")
    run_dir = _run_dir(variant.agent_id)
    decision = evaluate_and_decide(
        s3, buckets, variant, window, holdout_key, candidates["true"], run_dir, RunContext("backfill")
    )
    assert not decision["deploy"]
    assert decision["would_deploy"]  # the better model would have won a normal run
    assert _failed(decision) == {"run_may_move_manifest"}
    assert decision["reason"].startswith("backfill, manifest left alone; the decision would have been: deploy")
    assert read_json(s3, buckets.artifacts, run_dir + "decision.json") == decision
    assert read_manifest(s3, buckets, "judge-backfill")[1] == etag


def _strict(s3, buckets, key: str) -> dict:
    """The stored record, parsed as any strict JSON parser would (NaN or Infinity raise)."""
    from agent_retraining.storage import get_bytes

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(get_bytes(s3, buckets.artifacts, key)[0], parse_constant=refuse)


def test_thin_or_unusable_evidence_is_a_named_refusal_in_strict_json(judged, s3, buckets):
    """No positive reward; a policy that matches no logged row; a first model below the logging policy."""
    spec, window, holdout_key, candidates = judged
    holdout = read_parquet(s3, buckets.artifacts, holdout_key)
    cold = spec_variant(spec, agent_id="judge-thin")
    run_dir = _run_dir(cold.agent_id)

    no_positive = holdout.set_column(
        holdout.schema.get_field_index("reward"), "reward", pa.array(np.zeros(holdout.num_rows))
    )
    write_parquet(s3, buckets.artifacts, "judge-bot/holdout-no-positive.parquet", no_positive)
    decision = evaluate_and_decide(
        s3, buckets, cold, window, "judge-bot/holdout-no-positive.parquet", candidates["true"], run_dir
    )
    assert not decision["deploy"]
    assert "evidence_rewards" in _failed(decision)
    assert f"0 positive and {holdout.num_rows} zero rewards" in decision["reason"]
    assert decision["metrics"]["logistic_regression"]["roc_auc"] is None  # not measurable, and not a crash
    assert _strict(s3, buckets, run_dir + "decision.json")["deploy"] is False

    logged = holdout.column("action").to_pylist()
    rarest = min(spec.actions, key=logged.count)
    never_rarest = holdout.filter(pc.not_equal(holdout.column("action"), rarest))
    write_parquet(s3, buckets.artifacts, "judge-bot/holdout-without-rarest.parquet", never_rarest)
    rarest_column = feature_columns(spec).index(f"action={rarest}")

    def always_pick_rarest(coefficients):
        coefficients[rarest_column] += 50.0

    always_rarest = _edited_logistic_regression(judged, s3, buckets, "always-rarest", always_pick_rarest)
    unmatched = evaluate_and_decide(
        s3, buckets, cold, window, "judge-bot/holdout-without-rarest.parquet", [always_rarest], run_dir
    )
    assert unmatched["metrics"]["logistic_regression"]["policy_value"] is None
    assert unmatched["metrics"]["logistic_regression"]["policy_matched_rows"] == 0
    assert _failed(unmatched) == {"policy_value_vs_logging"}
    assert "too little evidence: the challenger's policy picks the logged action on 0 rows" in unmatched["reason"]
    _strict(s3, buckets, run_dir + "decision.json")

    # A first deploy: accurate on the logged rows, yet its policy would act worse than what the agent does today.
    def favour_rarest(coefficients):
        coefficients[rarest_column] += 4.0

    favours_rarest = _edited_logistic_regression(judged, s3, buckets, f"favours-{rarest}", favour_rarest)
    below_logging = evaluate_and_decide(s3, buckets, cold, window, holdout_key, [favours_rarest], run_dir)
    assert below_logging["champion"]["version"] is None
    assert below_logging["policy_value_vs_logging"]["difference"] < 0  # worse than what the agent does today
    assert _failed(below_logging) == {"policy_value_vs_logging"}
    assert read_manifest(s3, buckets, cold.agent_id) == (None, None)
