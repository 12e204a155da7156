"""The gate's rules: floors, evidence, the policy-value comparison, no regression against the champion, and the
run's circumstances; each rule is a record with the numbers it compared."""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

from agent_retraining.evaluate.metrics import HIGHER_IS_BETTER
from agent_retraining.evaluate.statistics import Z_95
from agent_retraining.spec import AgentSpec
from agent_retraining.window import Window

# Rules about the run's circumstances, not the model: a decision failing only these would deploy in another run.
CIRCUMSTANCE_RULES = ("run_may_move_manifest", "no_canary_running")


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


def model_failures(rules: list[dict]) -> list[dict]:
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
    estimator: str = "snips"  # which estimator valued them
    others: dict[str, dict] = field(default_factory=dict)  # the same comparisons by the other estimators

    @property
    def negative_rewards(self) -> int:
        return self.rows - self.positive_rewards


def evidence_rules(spec: AgentSpec, evidence: HoldoutEvidence) -> list[dict]:
    """Too little evidence is a refusal with the numbers, never a crash or a NaN that slips through."""
    need = spec.gate.evidence
    counted = (f"{evidence.positive_rewards} positive and {evidence.negative_rewards} zero rewards in the holdout, "
               f"at least {need.min_positive_rewards} positive and 1 zero needed")  # fmt: skip
    if spec.reward.type == "graded":  # the same sums, of rewards scaled onto [0, 1]
        counted = (f"the holdout's rewards on [0, 1] sum to {evidence.positive_rewards} of {evidence.rows} rows, at "
                   f"least {need.min_positive_rewards} and at most rows - 1 needed")  # fmt: skip
    return [
        _rule("evidence_holdout_rows", evidence.rows >= need.min_holdout_rows,
              f"{evidence.rows} holdout rows, at least {need.min_holdout_rows} needed"),
        _rule("evidence_rewards",
              evidence.positive_rewards >= need.min_positive_rewards and evidence.negative_rewards >= 1, counted),
    ]  # fmt: skip


def one_sided_lower_bound(paired: dict, confidence: float) -> float:
    """The paired difference's lower bound at a one-sided `confidence`, from the standard error its 95% interval
    implies."""
    low, high = paired["ci"]
    return paired["difference"] - NormalDist().inv_cdf(confidence) * (high - low) / (2 * Z_95)


def policy_rule(name: str, what: str, challenger: dict, baseline_matched: int | None, evidence: HoldoutEvidence,
                spec) -> dict:  # fmt: skip
    """Deploy only if the paired difference's one-sided lower bound at `gate.policy_value.confidence` reaches
    `min_difference` and its 95% lower bound is at least minus the margin, on enough rows; the detail names the
    estimator that decided and what the others said.

    The margin alone is a non-inferiority test: it lets through every challenger about as good as the baseline, and
    a narrower interval (DR's) lets through more of them, half of which are a hair worse. The one-sided bound is a
    superiority test: a challenger no better than the baseline passes it with a chance of at most one minus the
    confidence, whichever estimator judged, and less the narrower its interval; one truly better passes it more
    often the narrower its interval. So, where the intervals are honest, a more precise estimator decides sooner
    without deploying worse models more often."""
    against = "vs_champion" if name == "policy_value" else "vs_logging"
    paired = getattr(evidence, against)
    margin, need = spec.gate.policy_value_margin, spec.gate.evidence.min_matched_rows
    least, confidence = spec.gate.policy_value.min_difference, spec.gate.policy_value.confidence
    thin = [(who, rows) for who, rows in (("challenger", challenger["policy_matched_rows"]), (what, baseline_matched))
            if rows is not None and rows < need]  # fmt: skip
    if thin:
        detail = "; ".join(f"the {who}'s policy picks the logged action on {rows} rows" for who, rows in thin)
        return _rule(name, False, f"too little evidence: {detail}, at least {need} needed")
    low, high = paired["ci"]
    bound = one_sided_lower_bound(paired, confidence)
    said = [(other, compared[against]) for other, compared in evidence.others.items()]
    others = "".join(f"; {other}: {o['difference']:+.4f} [{o['ci'][0]:+.4f}, {o['ci'][1]:+.4f}]"
                     for other, o in said if o and o["ci"])  # fmt: skip
    return _rule(
        name,
        bound >= least and low >= -margin,
        f"policy value minus the {what}'s by {evidence.estimator}: {paired['difference']:+.4f}, 95% interval "
        f"[{low:+.4f}, {high:+.4f}], one-sided {confidence:.0%} lower bound {bound:+.4f}; that bound >= {least:g} "
        f"and the 95% lower bound >= -{margin}{others}",
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
        rules.append(policy_rule("policy_value_vs_logging", "logging policy", challenger, None, evidence, spec))
        return rules
    rules.append(policy_rule("policy_value", "champion", challenger, champion["policy_matched_rows"], evidence, spec))
    if champion_failures and spec.gate.failing_champion == "replace":
        return rules
    for metric, allowed in spec.gate.max_regression.model_dump().items():
        if metric == "roc_auc" and spec.reward.type == "graded":
            continue  # no AUC without classes; the log loss and Brier regressions judge a graded model
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
