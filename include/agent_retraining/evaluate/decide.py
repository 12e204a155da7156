"""Evaluation and the deploy decision: challengers against the champion on the same rows.

Offline accuracy alone does not say whether the agent will act better: the logs
were produced by the agent's own policy. So besides AUC, log loss, Brier score
and calibration, each model's greedy policy is valued off-policy from the
logged propensities (by the spec's estimator, estimators.py: self-normalised
IPS, or doubly robust with a candidate's fit on the training days as the reward
model), and the gate compares policies on the paired difference over the same
rows, against the champion or, without one, against the policy the agent runs
today. When the holdout cannot tell (too few rows, one reward class, a policy
that matches no logged row) the decision is a named refusal; when the champion
should exist but cannot be loaded, there is no decision at all.
"""

from __future__ import annotations

import logging

from agent_retraining.evaluate.estimators import ESTIMATORS, LoggedRows, greedy_estimates, paired_difference
from agent_retraining.evaluate.metrics import model_metrics, slice_masks
from agent_retraining.evaluate.portability import check_rows, portable_rule
from agent_retraining.evaluate.rules import (
    HoldoutEvidence,
    RunContext,
    data_rule,
    floor_rules,
    gate_rules,
    model_failures,
    ranked_candidates,
)
from agent_retraining.manifest import judged_against, read_manifest
from agent_retraining.models.artifacts import ArtifactError, fetch_verified, load_live_model
from agent_retraining.models.encoding import action_scores, encoding_of
from agent_retraining.models.features import action_indices, encode_context, encodes_like
from agent_retraining.models.training import LoadedModel, load
from agent_retraining.records import Decision, WindowVerdict, read_record_or_none, write_record
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import Buckets, delete, read_parquet
from agent_retraining.window import Window


class ChampionUnavailable(Exception):
    """The live model's artifact is missing or does not match its checksum: nothing can be judged against it."""


def champion_model(spec: AgentSpec, live: dict | None, load_live, run: RunContext) -> tuple[LoadedModel | None, str]:
    """The live model to judge against, or why there is none; fails closed when it should exist but cannot load.

    Only two cases are judged without a champion: no manifest yet, or a live model
    of another feature encoding (the spec's features changed). A lost or tampered
    artifact stops the run instead, unless an operator asked for exactly that.
    S3 errors are not caught here: transient ones are retried by the task, others fail it.
    """
    if live is None:
        return None, "no model is live yet (first deploy): judged on the floors and against the logging policy"
    if not encodes_like(live, spec):
        return None, (
            f"live model {live['version']} uses another feature encoding (the spec's features changed): "
            "judged on the floors and against the logging policy"
        )
    try:
        return load_live(live), f"champion is the live model {live['version']}"
    except (ArtifactError, ValueError, KeyError) as exc:
        if run.without_champion_allowed:
            return None, (
                f"live model {live['version']} cannot be used ({exc}); judged on the floors and against the "
                "logging policy because the operator set judge_without_champion for this manual run"
            )
        raise ChampionUnavailable(
            f"{exc}. Without the live model {live['version']} this run cannot tell whether a new model is better, so "
            "it decides nothing. Either roll back to a version whose artifact is intact (DAG rollback_model), or "
            "trigger a manual run with judge_without_champion=true to judge on the floors and the logging policy."
        ) from exc


def reward_model_of(spec: AgentSpec, candidates: list[dict], champion_trained_until: str | None,
                    window: Window) -> str:  # fmt: skip
    """The model whose predictions are the doubly robust estimator's reward model: the spec's choice when this run
    trained it; else the champion, when it was trained on days before the holdout; else the run's first candidate.
    None of them has seen the holdout it helps judge.

    The champion by default because a candidate fitted on the challenger's own training days shares the
    challenger's errors: it expects the challenger's picks to pay, and the correction, from the few logged rows
    where the challenger disagrees with the champion, rarely undoes that. Re-judged with the champion's
    predictions, the loops' nights were as tight and better centred on the truth (docs/evaluation.md)."""
    trained = [c["candidate"] for c in candidates]
    wanted = spec.gate.policy_value.reward_model
    if wanted in trained:
        return wanted
    if champion_trained_until is not None and champion_trained_until < window.holdout_first.isoformat():
        return "champion"
    return trained[0]


def evaluate_and_decide(
    s3,
    buckets: Buckets,
    spec: AgentSpec,
    window: Window,
    holdout_key: str,
    candidates: list[dict],
    run_dir: str,
    run: RunContext = RunContext(),
) -> dict:
    """Score every candidate and the champion on the holdout, apply the gate, store the decision in the run's folder.

    The decision records the manifest (version and ETag) it was judged against: a deploy may only replace that one.
    """
    for stale in ("decision.json", "deployment.json"):  # a cleared task that fails must not leave its last try's
        delete(s3, buckets.artifacts, run_dir + stale)
    holdout = read_parquet(s3, buckets.artifacts, holdout_key)
    context = encode_context(spec, holdout)
    logged = action_indices(spec, holdout)
    rewards = holdout.column("reward").to_numpy().astype(float)  # on [0, 1]: the data gate scaled them
    masks = slice_masks(spec, holdout, logged)

    models = {}
    for candidate in candidates:
        body = fetch_verified(s3, buckets.artifacts, candidate["artifact_key"], candidate["sha256"])
        models[candidate["candidate"]] = load(candidate["framework"], body, candidate["params"])
    live, live_etag = read_manifest(s3, buckets, spec.agent_id)
    champion_loaded, champion_note = champion_model(spec, live, lambda m: load_live_model(s3, buckets, m), run)
    if champion_loaded:
        models["champion"] = champion_loaded
    encoding = encoding_of(spec)
    scores = dict(zip(models, action_scores(encoding, context, list(models.values())), strict=True))
    compared = check_rows(len(context), spec.training.seed)
    portable = {
        c["candidate"]: portable_rule(
            s3, buckets.artifacts, c, encoding, context[compared], scores[c["candidate"]][compared]
        )
        for c in candidates
    }
    reward_model = reward_model_of(spec, candidates, live["trained_on"]["last"] if champion_loaded else None, window)
    rows = LoggedRows(rewards, holdout.column("propensity").to_numpy(), logged, scores[reward_model])
    estimator = ESTIMATORS[spec.gate.policy_value.estimator]
    estimates = {name: greedy_estimates(per_action, rows) for name, per_action in scores.items()}
    metrics = {
        name: model_metrics(per_action, rows, spec.reward, estimates[name], estimator.name, masks)
        for name, per_action in scores.items()
    }
    champion = metrics.get("champion")
    champion_floors = floor_rules(spec, champion) if champion else []
    champion_failures = [r for r in champion_floors if not r["passed"]]
    validation = read_record_or_none(s3, buckets.artifacts, run_dir + "validation.json", WindowVerdict)
    data = data_rule(validation)

    def differences(name: str, by: str) -> dict:
        """The greedy policy of `name` against the logging policy and the champion's, by one estimator."""
        mine, logging_policy = estimates[name][by], ESTIMATORS[by].logging_policy(rows)
        return {"vs_logging": paired_difference(mine, logging_policy),
                "vs_champion": paired_difference(mine, estimates["champion"][by]) if champion else None}  # fmt: skip

    def judge(name: str) -> tuple[HoldoutEvidence, list[dict]]:
        others = {other: differences(name, other) for other in ESTIMATORS if other != estimator.name}
        evidence = HoldoutEvidence(rows=holdout.num_rows, positive_rewards=int(rewards.sum()), estimator=estimator.name,
                                   others=others, **differences(name, estimator.name))  # fmt: skip
        return evidence, [data, portable[name], *gate_rules(spec, metrics[name], champion, live, window, run, evidence,
                                                            champion_failures)]  # fmt: skip

    # Every candidate is judged by every rule; the best by the primary metric among those that pass is deployed.
    judged = {candidate["candidate"]: judge(candidate["candidate"]) for candidate in candidates}
    verdicts = {name: model_failures(rules) for name, (_, rules) in judged.items()}
    ranked = ranked_candidates(spec, metrics)
    winner_name = next((name for name in ranked if not verdicts[name]), ranked[0])
    winner = next(c for c in candidates if c["candidate"] == winner_name)
    evidence, rules = judged[winner_name]
    failed = [r for r in rules if not r["passed"]]
    failing = verdicts[winner_name]
    champion_fails = ""
    if champion_failures:
        champion_fails = (f"the champion {live['version']} itself fails today's floors ("
                          + ", ".join(f"{r['rule']}: {r['detail']}" for r in champion_failures) + ")")  # fmt: skip
    alert = bool(champion_failures) and bool(failing) and spec.gate.failing_champion == "alert"

    def with_failures(names: list[str]) -> str:
        return "; ".join(f"{name} ({', '.join(r['rule'] for r in verdicts[name])})" for name in names)

    if failing:
        others = [name for name in ranked if name != winner_name]
        reason = f"keep the champion: {winner_name} failed " + ", ".join(
            f"{r['rule']} ({r['detail']})" for r in failing
        )  # fmt: skip
        if others:
            reason += "; so did " + with_failures(others)
        if alert:
            reason += f"; {champion_fails}, and the spec's failing_champion is alert: an operator must decide"
        elif champion_fails:
            reason += f"; {champion_fails}"
    else:
        if champion and spec.release.mode == "canary":
            reason = (f"canary {winner_name} on {spec.release.share:.0%} of traffic: it passed every rule against "
                      f"the floors and champion {live['version']}; live results decide its promotion")  # fmt: skip
        elif champion:
            reason = f"deploy {winner_name}: it passed every rule against the floors and champion {live['version']}"
        else:
            reason = f"deploy {winner_name}: {champion_note}, and it passed every rule"
        if champion_fails:
            reason += f" ({champion_fails}: no regression or slice rule against it)"
        passed_over = [name for name in ranked[: ranked.index(winner_name)] if verdicts[name]]
        if passed_over:
            reason += f"; better by {spec.gate.primary_metric} but failing: {with_failures(passed_over)}"
    if validation and validation["left_out"]:
        reason += f" (the data gate left out {', '.join(d['day'] for d in validation['left_out'])})"
    if run.records_only:
        reason = f"{run.records_only}, manifest left alone; the decision would have been: {reason}"
    elif live and live.get("canary"):
        running = live["canary"]["version"]
        reason = f"canary {running} is running, manifest left alone; the decision would have been: {reason}"
    judged_without_champion = live is not None and champion is None and encodes_like(live, spec)
    if judged_without_champion:
        logging.getLogger(__name__).warning("judged without the live model %s: %s", live["version"], champion_note)
    logging_policy = estimator.logging_policy(rows)
    decision = {
        "agent_id": spec.agent_id,
        "window": {"first": window.first.isoformat(), "last": window.last.isoformat()},
        "holdout_rows": holdout.num_rows,
        "left_out_days": validation["left_out"] if validation else None,
        "positive_rewards": evidence.positive_rewards,
        "primary_metric": spec.gate.primary_metric,
        "metrics": metrics,
        "reward": spec.reward.model_dump(mode="json"),  # type, range (the report's units), delay (the canary's start)
        "estimator": {"name": estimator.name, "reward_model": reward_model},
        "logging_policy_value": {"value": logging_policy.value, "ci": logging_policy.interval()},
        "policy_value_vs_logging": evidence.vs_logging,
        "policy_value_vs_champion": evidence.vs_champion,
        # The winner's comparisons by every estimator, the deciding one's included: what the other would have said.
        "policy_value_differences": {
            estimator.name: {"vs_logging": evidence.vs_logging, "vs_champion": evidence.vs_champion},
            **evidence.others,
        },
        "champion": {
            "version": live["version"] if champion else None,
            "note": champion_note,
            "floors": champion_floors,
            "fails_floors": bool(champion_failures),
        },
        "candidates": [
            {
                "candidate": name,
                "passed": not verdicts[name],
                "failed": verdicts[name],
                spec.gate.primary_metric: metrics[name][spec.gate.primary_metric],
            }
            for name in ranked
        ],
        "judged_against": judged_against(live, live_etag),
        "winner": winner,
        "rules": rules,
        "deploy": not failed,
        "would_deploy": not failing,
        "alert": alert,
        "older_than_live_allowed": run.older_than_live_allowed,
        "judged_without_champion": judged_without_champion,  # only ever by the operator's override
        "run_type": run.run_type,
        "reason": reason,
    }
    return write_record(s3, buckets.artifacts, run_dir + "decision.json", Decision, decision)
