"""Evaluation and the deploy decision: challengers against the champion on the same rows.

Offline accuracy alone does not say whether the agent will act better: the logs
were produced by the agent's own policy. So besides AUC, log loss, Brier score
and calibration, each model's greedy policy is valued off-policy from the
logged propensities (self-normalised IPS), and the gate compares policies on
the paired difference over the same rows, against the champion or, without one,
against the policy the agent runs today. When the holdout cannot tell (too few
rows, one reward class, a policy that matches no logged row) the decision is a
named refusal; when the champion should exist but cannot be loaded, there is no
decision at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from agent_retraining.contract import context_column
from agent_retraining.features import action_indices, encode_context, encoding_id
from agent_retraining.manifest import ArtifactError, fetch_verified, judged_against, load_live_model, read_manifest
from agent_retraining.spec import AgentSpec
from agent_retraining.storage import Buckets, delete, read_json_or_none, read_parquet, write_json
from agent_retraining.training import LoadedModel, action_scores, load
from agent_retraining.window import Window

HIGHER_IS_BETTER = {
    "roc_auc": True,
    "log_loss_skill": True,
    "brier_skill": True,
    "log_loss": False,
    "brier": False,
    "calibration_error": False,
    "policy_value": True,
}
Z_95 = 1.959964
# Rules about the run's circumstances, not the model: a decision failing only these would deploy in another run.
CIRCUMSTANCE_RULES = ("run_may_move_manifest", "no_canary_running")


def calibration_curve(labels: np.ndarray, predictions: np.ndarray, bins: int = 10) -> list[dict]:
    """Mean prediction against the observed reward rate in each non-empty equal-width probability bin."""
    which = np.minimum((predictions * bins).astype(int), bins - 1)
    curve = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            curve.append({"predicted": float(predictions[mask].mean()), "observed": float(labels[mask].mean()),
                          "rows": int(mask.sum())})  # fmt: skip
    return curve


def calibration_error(curve: list[dict]) -> float:
    """Expected calibration error: the bins' gaps between prediction and outcome, weighted by their rows."""
    rows = sum(point["rows"] for point in curve)
    return float(sum(point["rows"] * abs(point["predicted"] - point["observed"]) for point in curve) / rows)


def _policy_influence(weights: np.ndarray, rewards: np.ndarray) -> tuple[float | None, np.ndarray]:
    """Self-normalised IPS value and each row's influence on it (what the delta method's variance sums).

    With all weights 1 this is the logging policy's own, on-policy value: the mean reward.
    """
    total = weights.sum()
    if total == 0:
        return None, np.zeros(len(rewards))
    value = float((weights * rewards).sum() / total)
    return value, len(rewards) * weights * (rewards - value) / total


def _interval(value: float, influence: np.ndarray) -> list[float]:
    stderr = float(np.sqrt((influence**2).sum()) / len(influence))
    return [value - Z_95 * stderr, value + Z_95 * stderr]


@dataclass
class RatioEstimate:
    """sum(a) / sum(b) with its delta-method variance, from per-cluster sums that can be added a day at a time.

    A mean reward is a = reward, b = 1; a self-normalised IPS value is a = w * reward,
    b = w. Clusters are rows, or sessions when the rows of a session are not
    independent (a canary routes whole sessions): the variance sums each cluster's
    (A - value * B)^2.
    """

    sums: np.ndarray = field(default_factory=lambda: np.zeros(5))  # A, B, A^2, A B, B^2 over clusters
    clusters: int = 0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        self.sums += [a.sum(), b.sum(), (a * a).sum(), (a * b).sum(), (b * b).sum()]
        self.clusters += len(a)

    @property
    def value(self) -> float | None:
        return float(self.sums[0] / self.sums[1]) if self.sums[1] > 0 else None

    @property
    def variance(self) -> float | None:
        if self.value is None or self.clusters < 2:
            return None
        a, b, aa, ab, bb = self.sums
        return float(max(aa - 2 * self.value * ab + self.value**2 * bb, 0.0) / b**2)

    def interval(self) -> list[float] | None:
        if self.variance is None:
            return None
        stderr = np.sqrt(self.variance)
        return [self.value - Z_95 * stderr, self.value + Z_95 * stderr]


def snips(matches: np.ndarray, rewards: np.ndarray, propensities: np.ndarray) -> dict:
    """Self-normalised IPS value of a deterministic policy, with a delta-method 95% interval.

    `matches` marks the rows where the evaluated policy picks the logged action.
    No matched row means no evidence: the value is None (never NaN, which would
    compare false against everything and could win a selection).
    """
    estimate, weights = RatioEstimate(), matches / propensities
    estimate.add(weights * rewards, weights)
    if estimate.value is None:
        return {"value": None, "ci_low": None, "ci_high": None, "matched_rows": 0}
    low, high = estimate.interval() or (None, None)
    return {"value": estimate.value, "ci_low": low, "ci_high": high, "matched_rows": int(matches.sum())}


def paired_difference(weights_a: np.ndarray, weights_b: np.ndarray, rewards: np.ndarray) -> dict:
    """Policy value of a minus that of b on the same rows, with a 95% delta-method interval.

    Both are estimated from the same logged rows, so their errors are correlated;
    judging the difference row by row is much tighter than comparing two
    separate intervals (or two point estimates, which ignores noise altogether).
    """
    value_a, influence_a = _policy_influence(weights_a, rewards)
    value_b, influence_b = _policy_influence(weights_b, rewards)
    if value_a is None or value_b is None:
        return {"difference": None, "ci": None}
    difference = value_a - value_b
    return {"difference": difference, "ci": _interval(difference, influence_a - influence_b)}


def slice_masks(spec: AgentSpec, holdout, logged: np.ndarray) -> dict[str, np.ndarray]:
    """Holdout rows of each logged action and each value of the spec's slice features, when there are enough."""
    import pyarrow.compute as pc

    masks = {f"action={action}": logged == i for i, action in enumerate(spec.actions)}
    for name in spec.gate.slices.features:
        column = holdout.column(context_column(name))
        for value in sorted(pc.unique(column).drop_null().to_pylist(), key=str):
            masks[f"{name}={value}"] = pc.fill_null(pc.equal(column, value), False).to_numpy(zero_copy_only=False)
    return {name: mask for name, mask in masks.items() if mask.sum() >= spec.gate.slices.min_rows}


def _slice_metrics(rewards: np.ndarray, predicted: np.ndarray, masks: dict[str, np.ndarray]) -> dict:
    from sklearn.metrics import log_loss, roc_auc_score

    result = {}
    for name, mask in masks.items():
        labels = rewards[mask]
        both_classes = 0 < labels.sum() < len(labels)
        result[name] = {
            "rows": int(mask.sum()),
            "roc_auc": float(roc_auc_score(labels, predicted[mask])) if both_classes else None,
            "log_loss": float(log_loss(labels, predicted[mask], labels=[0, 1])),
        }
    return result


def greedy_matches(per_action: np.ndarray, logged: np.ndarray) -> np.ndarray:
    """Rows where the model's greedy policy picks the action that was logged: the only rows that value it."""
    return per_action.argmax(axis=1) == logged


def model_metrics(per_action: np.ndarray, logged, rewards, propensities, masks) -> dict:
    """Every metric of one model on the holdout rows, overall and per slice, from its scores of every action.

    A metric the holdout cannot measure (AUC with one reward class) is None, and the gate says why.
    """
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    predicted = np.clip(per_action[np.arange(len(logged)), logged], 1e-7, 1 - 1e-7)
    policy = snips(greedy_matches(per_action, logged), rewards, propensities)
    curve = calibration_curve(rewards, predicted)
    loss, brier = float(log_loss(rewards, predicted, labels=[0, 1])), float(brier_score_loss(rewards, predicted))
    base_rate = float(np.clip(rewards.mean(), 1e-7, 1 - 1e-7))  # the predictor that knows only the holdout's rate
    base_loss = -(base_rate * np.log(base_rate) + (1 - base_rate) * np.log(1 - base_rate))
    one_class = not 0 < rewards.sum() < len(rewards)
    return {
        "roc_auc": None if one_class else float(roc_auc_score(rewards, predicted)),
        "log_loss_skill": None if one_class else float(1 - loss / base_loss),
        "brier_skill": None if one_class else float(1 - brier / (base_rate * (1 - base_rate))),
        "log_loss": loss,
        "brier": brier,
        "calibration_error": calibration_error(curve),
        "calibration_curve": curve,
        "policy_value": policy["value"],
        "policy_value_ci": [policy["ci_low"], policy["ci_high"]],
        "policy_matched_rows": policy["matched_rows"],
        "slices": _slice_metrics(rewards, predicted, masks),
    }


def ranked_candidates(spec: AgentSpec, metrics: dict[str, dict]) -> list[str]:
    """The spec's candidates that have metrics, best first by the primary metric; ties keep the spec's order.

    A candidate whose primary metric could not be measured ranks after every one that could.
    """
    primary = spec.gate.primary_metric
    sign = -1.0 if HIGHER_IS_BETTER[primary] else 1.0
    names = [name for name in spec.candidates if name in metrics]
    return sorted(names, key=lambda name: (metrics[name][primary] is None, sign * (metrics[name][primary] or 0.0)))


def select_winner(spec: AgentSpec, metrics: dict[str, dict]) -> str:
    """Best candidate by the spec's primary metric (see `ranked_candidates`)."""
    return ranked_candidates(spec, metrics)[0]


def _model_failures(rules: list[dict]) -> list[dict]:
    """The failed rules that are about the model (a run's circumstances, such as a backfill, are not)."""
    return [r for r in rules if not r["passed"] and r["rule"] not in CIRCUMSTANCE_RULES]


def _rule(name: str, passed: bool, detail: str) -> dict:
    return {"rule": name, "passed": bool(passed), "detail": detail}


def data_rule(validation: dict | None) -> dict:
    """The data gate's verdict on the run's window, as a rule of the decision: a decision is never taken on
    data the gate did not pass, and it names the days it left out."""
    if validation is None:
        return _rule("data_validated", False, "no validation.json in the run's folder: the data gate did not judge")
    detail = f"{len(validation['usable_days'])} usable day(s), {validation['rows']} rows passed the data gate"
    if validation["left_out"]:
        detail += "; left out: " + "; ".join(f"{d['day']} ({d['why'][0]})" for d in validation["left_out"])
    return _rule("data_validated", validation["passed"], detail if validation["passed"] else validation["failures"][0])


def _at_least(metric: str, value: float | None, bound: float | None, how: str) -> dict:
    """A rule that `value` is no worse than `bound`, in the metric's own direction."""
    if value is None or bound is None:
        return _rule(f"{how}_{metric}", False, f"{metric} cannot be measured on this holdout (see evidence_*)")
    relation = ">=" if HIGHER_IS_BETTER[metric] else "<="
    passed = value >= bound if HIGHER_IS_BETTER[metric] else value <= bound
    return _rule(f"{how}_{metric}", passed, f"{metric} {value:.4f} {relation} {bound:.4f}")


# Each floor of the spec and the metric it bounds, in the order the rules are listed.
FLOORS = (
    ("min_roc_auc", "roc_auc"), ("min_log_loss_skill", "log_loss_skill"), ("min_brier_skill", "brier_skill"),
    ("max_log_loss", "log_loss"), ("max_brier", "brier"), ("max_calibration_error", "calibration_error"),
)  # fmt: skip


def floor_rules(spec: AgentSpec, metrics: dict) -> list[dict]:
    """The spec's floors on one model's metrics (a floor the spec leaves out is not judged)."""
    floors = spec.gate.floors
    return [_at_least(metric, metrics[metric], getattr(floors, key), "floor")
            for key, metric in FLOORS if getattr(floors, key) is not None]  # fmt: skip


@dataclass(frozen=True)
class RunContext:
    """What about the Airflow run itself the gate must know."""

    run_type: str = "manual"  # "scheduled", "manual", "backfill", ...
    allow_older_than_live: bool = False  # operator override, honoured for manual runs only
    dry_run: bool = False  # evaluate and report, never deploy
    judge_without_champion: bool = False  # operator override when the live artifact is lost; manual runs only

    @property
    def older_than_live_allowed(self) -> bool:
        return self.allow_older_than_live and self.run_type == "manual"

    @property
    def without_champion_allowed(self) -> bool:
        return self.judge_without_champion and self.run_type == "manual"

    @property
    def records_only(self) -> str | None:
        """Why this run may not move the manifest whatever it decides: "backfill", "dry run", or None."""
        return "backfill" if self.run_type == "backfill" else "dry run" if self.dry_run else None


@dataclass(frozen=True)
class HoldoutEvidence:
    """How much the holdout can say, and the paired policy comparisons the gate judges on."""

    rows: int
    positive_rewards: int
    vs_logging: dict  # paired_difference of the challenger's greedy policy minus the logging policy
    vs_champion: dict | None = None  # ... minus the champion's, when there is one

    @property
    def negative_rewards(self) -> int:
        return self.rows - self.positive_rewards


def evidence_rules(spec: AgentSpec, evidence: HoldoutEvidence) -> list[dict]:
    """Too little evidence is a refusal with the numbers, never a crash or a NaN that slips through."""
    need = spec.gate.evidence
    return [
        _rule("evidence_holdout_rows", evidence.rows >= need.min_holdout_rows,
              f"{evidence.rows} holdout rows, at least {need.min_holdout_rows} needed"),
        _rule("evidence_rewards",
              evidence.positive_rewards >= need.min_positive_rewards and evidence.negative_rewards >= 1,
              f"{evidence.positive_rewards} positive and {evidence.negative_rewards} zero rewards in the holdout, "
              f"at least {need.min_positive_rewards} positive and 1 zero needed"),
    ]  # fmt: skip


def _policy_rule(name: str, what: str, challenger: dict, baseline_matched: int | None, paired: dict, spec) -> dict:
    """Deploy only if the paired difference's 95% lower bound is at least minus the margin, on enough rows."""
    margin, need = spec.gate.policy_value_margin, spec.gate.evidence.min_matched_rows
    thin = [(who, rows) for who, rows in (("challenger", challenger["policy_matched_rows"]), (what, baseline_matched))
            if rows is not None and rows < need]  # fmt: skip
    if thin:
        detail = "; ".join(f"the {who}'s policy picks the logged action on {rows} rows" for who, rows in thin)
        return _rule(name, False, f"too little evidence: {detail}, at least {need} needed")
    low, high = paired["ci"]
    return _rule(
        name,
        low >= -margin,
        f"policy value minus the {what}'s: {paired['difference']:+.4f}, 95% interval [{low:+.4f}, {high:+.4f}]; "
        f"lower bound >= -{margin}",
    )


def gate_rules(
    spec: AgentSpec,
    challenger: dict,
    champion: dict | None,
    live: dict | None,
    window: Window,
    run: RunContext,
    evidence: HoldoutEvidence,
    champion_failures: list[dict] = (),
) -> list:
    """Each rule of the gate with the numbers it compared; deploy only if all pass.

    `champion_failures` are the floors the champion itself fails on this holdout: with the spec's
    `failing_champion: replace`, a challenger is then not held to "no regression" against it (only to the
    floors and to its policy value).
    """
    rules = [*evidence_rules(spec, evidence), *floor_rules(spec, challenger)]
    if run.records_only:
        what = {"backfill": "a backfill run", "dry run": "a dry run"}[run.records_only]
        rules.append(_rule("run_may_move_manifest", False, f"{what} records the decision it would take, moves nothing"))
    if live is not None:
        canary = live.get("canary")
        running = canary and (
            f"canary {canary['version']} has served {canary['share']:.0%} of routing keys since "
            f"{canary['first_day']}; the promotion DAG decides it before another model may move"
        )
        rules.append(_rule("no_canary_running", canary is None, running or "no canary is running"))
        newest = live["trained_on"]["last"]
        detail = f"trained on data up to {window.last}, the live model up to {newest}"
        if run.older_than_live_allowed:
            detail += "; waived by the operator for this manual run (allow_older_than_live)"
        rules.append(
            _rule("not_older_than_live", window.last.isoformat() >= newest or run.older_than_live_allowed, detail)
        )
    if champion is None:
        # The agent acts even with no usable model (the logged policy): a first model must not be worse than it.
        rules.append(_policy_rule("policy_value_vs_logging", "logging policy", challenger, None, evidence.vs_logging,
                                  spec))  # fmt: skip
        return rules
    rules.append(
        _policy_rule(
            "policy_value", "champion", challenger, champion["policy_matched_rows"], evidence.vs_champion, spec
        )
    )
    if champion_failures and spec.gate.failing_champion == "replace":
        return rules
    for metric, allowed in spec.gate.max_regression.model_dump().items():
        theirs = champion[metric]
        bound = None if theirs is None else theirs - allowed if HIGHER_IS_BETTER[metric] else theirs + allowed
        rules.append(_at_least(metric, challenger[metric], bound, "no_regression"))
    drop = spec.gate.slices.max_auc_drop
    for name, mine in challenger["slices"].items():
        theirs = champion["slices"].get(name)
        if theirs and mine["roc_auc"] is not None and theirs["roc_auc"] is not None:
            rules.append(
                _rule(
                    f"slice_roc_auc:{name}",
                    mine["roc_auc"] >= theirs["roc_auc"] - drop,
                    f"{name} ({mine['rows']} rows): roc_auc {mine['roc_auc']:.4f} >= champion "
                    f"{theirs['roc_auc']:.4f} - {drop}",
                )
            )
    return rules


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
    if live.get("encoding_id") != encoding_id(spec):
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
    rewards = holdout.column("reward").to_numpy().astype(float)
    propensities = holdout.column("propensity").to_numpy()
    masks = slice_masks(spec, holdout, logged)

    models = {}
    for candidate in candidates:
        body = fetch_verified(s3, buckets.artifacts, candidate["artifact_key"], candidate["sha256"])
        models[candidate["candidate"]] = load(candidate["framework"], body, candidate["params"])
    live, live_etag = read_manifest(s3, buckets, spec.agent_id)
    champion_loaded, champion_note = champion_model(spec, live, lambda m: load_live_model(s3, buckets, m), run)
    if champion_loaded:
        models["champion"] = champion_loaded
    scores = dict(zip(models, action_scores(spec, context, list(models.values())), strict=True))
    metrics = {
        name: model_metrics(per_action, logged, rewards, propensities, masks) for name, per_action in scores.items()
    }
    champion = metrics.get("champion")
    champion_floors = floor_rules(spec, champion) if champion else []
    champion_failures = [r for r in champion_floors if not r["passed"]]
    validation = read_json_or_none(s3, buckets.artifacts, run_dir + "validation.json")
    data = data_rule(validation)

    def greedy_weights(name: str) -> np.ndarray:
        return greedy_matches(scores[name], logged) / propensities

    logging_weights = np.ones(len(rewards))  # the logged policy, valued on-policy
    champion_weights = greedy_weights("champion") if champion else None

    def judge(name: str) -> tuple[HoldoutEvidence, list[dict]]:
        weights = greedy_weights(name)
        evidence = HoldoutEvidence(
            rows=holdout.num_rows,
            positive_rewards=int(rewards.sum()),
            vs_logging=paired_difference(weights, logging_weights, rewards),
            vs_champion=paired_difference(weights, champion_weights, rewards) if champion else None,
        )
        return evidence, [data, *gate_rules(spec, metrics[name], champion, live, window, run, evidence,
                                            champion_failures)]  # fmt: skip

    # Every candidate is judged by every rule; the best by the primary metric among those that pass is deployed.
    judged = {candidate["candidate"]: judge(candidate["candidate"]) for candidate in candidates}
    verdicts = {name: _model_failures(rules) for name, (_, rules) in judged.items()}
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
    judged_without_champion = live is not None and champion is None and live.get("encoding_id") == encoding_id(spec)
    if judged_without_champion:
        logging.getLogger(__name__).warning("judged without the live model %s: %s", live["version"], champion_note)
    logging_value, logging_influence = _policy_influence(logging_weights, rewards)
    decision = {
        "agent_id": spec.agent_id,
        "window": {"first": window.first.isoformat(), "last": window.last.isoformat()},
        "holdout_rows": holdout.num_rows,
        "left_out_days": validation["left_out"] if validation else None,
        "positive_rewards": evidence.positive_rewards,
        "primary_metric": spec.gate.primary_metric,
        "metrics": metrics,
        "logging_policy_value": {"value": logging_value, "ci": _interval(logging_value, logging_influence)},
        "policy_value_vs_logging": evidence.vs_logging,
        "policy_value_vs_champion": evidence.vs_champion,
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
    write_json(s3, buckets.artifacts, run_dir + "decision.json", decision)
    return decision
