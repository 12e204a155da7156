"""Agent spec: one YAML file per agent declares everything the pipeline needs.

The spec is parsed strictly (unknown keys are errors) because a typo in a gate
threshold that silently falls back to a default would let a bad model ship.
Parsing happens when the DAG file is imported; a broken spec shows up in the
Airflow UI as that agent's DAG reporting the file and the field, while every
other agent's DAG keeps working.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from agent_retraining import spec_yaml
from agent_retraining.contract import AGENT_ID_PATTERN
from agent_retraining.models.candidates import CANDIDATE_NAMES, candidate

AGENTS_DIR = Path(__file__).resolve().parent.parent / "agents"
ROLLBACK_DAG_ID = "rollback_model"  # one DAG for every agent


class SpecError(ValueError):
    """A spec file that cannot be used; the message names the file and field."""


class _Strict(BaseModel):
    # NaN and infinity are no thresholds: a NaN floor compares false against everything, an infinite timeout
    # overflows a timedelta when the DAG is built.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _ordered(low_name: str, low: float, high_name: str, high: float) -> None:
    if low >= high:
        raise ValueError(f"{low_name} ({low}) must be below {high_name} ({high})")


class CategoryFeature(_Strict):
    type: Literal["category"]
    vocabulary: list[str] = Field(min_length=1)
    max_null_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    # Agents meet new values (a new language, a new channel) before the spec knows them.
    min_in_vocabulary: float = Field(default=0.99, ge=0.0, le=1.0)


MAX_BUCKETS = 4096  # an open category's columns (each crossed with every action), or a text's


class OpenCategoryFeature(_Strict):
    """A category whose values keep coming (product ids, countries, tool names): each value is hashed into one of
    `buckets`, so a new value never changes the encoding and the live model stays the champion."""

    type: Literal["open_category"]
    buckets: int = Field(ge=2, le=MAX_BUCKETS)
    max_null_fraction: float = Field(default=0.0, ge=0.0, le=1.0)


class NumericFeature(_Strict):
    type: Literal["int", "float"]
    min: float
    max: float
    max_null_fraction: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _range_not_empty(self) -> NumericFeature:
        _ordered("min", self.min, "max", self.max)
        return self


class BoolFeature(_Strict):
    type: Literal["bool"]
    max_null_fraction: float = Field(default=0.0, ge=0.0, le=1.0)


class TextFeature(_Strict):
    """Free text the agent saw (a message, or its summary), featurized as hashed letter trigrams of its first
    `max_bytes` UTF-8 bytes (feature_hashing.py): no vocabulary to keep up to date, the same in every language.
    Longer texts are cut there; the data gate's `text_length` rule says how many were."""

    type: Literal["text"]
    buckets: int = Field(default=256, ge=16, le=MAX_BUCKETS)
    max_bytes: int = Field(default=2048, ge=16, le=2**20)
    max_null_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    max_truncated_fraction: float = Field(default=0.01, ge=0.0, le=1.0)


MAX_EMBEDDING_DIM = 4096


class EmbeddingFeature(_Strict):
    """A vector the agent computed (a sentence embedding of the message): exactly `dim` finite numbers, whose
    Euclidean norm the gate holds to [min_norm, max_norm] (a unit-normalized encoder gives about 1)."""

    type: Literal["embedding"]
    dim: int = Field(ge=2, le=MAX_EMBEDDING_DIM)
    min_norm: float = Field(default=0.0, ge=0.0)
    max_norm: float = Field(default=1e6, gt=0.0)
    max_null_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    max_off_norm_fraction: float = Field(default=0.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _norms_ordered(self) -> EmbeddingFeature:
        _ordered("min_norm", self.min_norm, "max_norm", self.max_norm)
        return self


Feature = Annotated[
    CategoryFeature | OpenCategoryFeature | NumericFeature | BoolFeature | TextFeature | EmbeddingFeature,
    Field(discriminator="type"),
]


class ActionFeature(_Strict):
    """A static property of every action (a handler's model family, its cost per call, whether it retrieves):
    models score (context, action features) pairs, so actions that share a value share what was learned about it,
    and a new action is scored from its features before any log holds it. `values` gives every action's value."""

    type: Literal["category", "int", "float", "bool"]
    vocabulary: list[str] | None = Field(default=None, min_length=1)
    min: float | None = None
    max: float | None = None
    values: dict[str, str | float | bool]

    @model_validator(mode="after")
    def _described_by_its_type(self) -> ActionFeature:
        if (self.type == "category") != (self.vocabulary is not None):
            raise ValueError("a category action feature has a vocabulary, and only a category has one")
        if (self.type in ("int", "float")) != (self.min is not None and self.max is not None):
            raise ValueError("an int or float action feature has min and max, and only those have them")
        if self.min is not None and self.max is not None:
            _ordered("min", self.min, "max", self.max)
        for action, value in self.values.items():
            problem = self._value_problem(value)
            if problem:
                raise ValueError(f"values.{action}: {value!r} {problem}")
        return self

    def _value_problem(self, value: object) -> str | None:
        if self.type == "bool":
            return None if isinstance(value, bool) else "is not true or false"
        if self.type == "category":
            return None if isinstance(value, str) and value in self.vocabulary else f"is not in {self.vocabulary}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "is not a number"
        if self.type == "int" and not float(value).is_integer():
            return "is not a whole number"
        return None if self.min <= value <= self.max else f"is outside [{self.min:g}, {self.max:g}]"


class Reward(_Strict):
    """What an outcome is and when it arrives.

    `binary`: 0 or 1. `graded`: any number in `range` [worst, best] (a judge's score in [0, 1], a CSAT of 1 to
    5); the pipeline learns and values policies on the reward scaled onto [0, 1] (worst 0, best 1), so a
    graded agent's models, margins and intervals read like a binary one's, and reports show values in the
    reward's own units too.

    `delay_days: 0`: the reward is in the decision's own event (log contract v1). Above 0, rewards arrive
    later, as feedback records under `<agent>/feedback/dt=<day of the decision>/` (contract v2); a decision
    day is trained on once `delay_days` days have passed after it, with the feedback that arrived by then, and
    judged again whenever more arrives. A decision without feedback counts as the worst reward (`missing:
    zero`) or is left out of training and evaluation (`drop`); fewer than `min_feedback_rate` of a day's
    decisions with feedback refuses the day (rule `feedback_rate`: a broken feedback stream, not bad luck).
    """

    type: Literal["binary", "graded"]
    range: tuple[float, float] = (0.0, 1.0)
    delay_days: int = Field(default=0, ge=0, le=30)
    missing: Literal["zero", "drop"] = "zero"
    min_feedback_rate: float = Field(default=0.05, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _range_fits_the_type(self) -> Reward:
        if self.type == "binary" and self.range != (0.0, 1.0):
            raise ValueError("range is for graded rewards; a binary reward is 0 or 1")
        _ordered("range's worst", self.range[0], "its best", self.range[1])
        return self

    @property
    def delayed(self) -> bool:
        return self.delay_days > 0

    def scaled(self, values):
        """Rewards in the reward's units as [0, 1] labels (the identity for binary rewards)."""
        low, high = self.range
        return (values - low) / (high - low)

    def in_units(self, value: float | None, difference: bool = False) -> float | None:
        """A value (or, with `difference`, a difference of values) on the [0, 1] scale in the reward's units."""
        low, high = self.range
        return None if value is None else value * (high - low) + (0.0 if difference else low)


class Training(_Strict):
    window_days: int = Field(ge=2, le=365)
    holdout_days: int = Field(ge=1)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)  # what every library's seed accepts
    # Per candidate, parameters that replace the defaults in training.py.
    hyperparameters: dict[Literal[CANDIDATE_NAMES], dict[str, Any]] = Field(default_factory=dict)
    # A bounded search: each entry is fitted on a sample of the older training days and scored on the newest;
    # the best by log loss is refit on the whole training set.
    lightgbm_search: list[dict[str, Any]] = Field(default_factory=list, max_length=8)
    # Train on a uniform sample of at most this many rows (None: every row); evaluation always uses every
    # holdout row. Keeps training time and memory bounded when an agent logs millions of events a day.
    max_train_rows: int | None = Field(default=None, ge=1000)

    @model_validator(mode="after")
    def _parameters_for_local_training(self) -> Training:
        for name, overrides in self.hyperparameters.items():
            candidate(name).check(f"hyperparameters.{name}", overrides)
        for index, setting in enumerate(self.lightgbm_search):
            candidate("lightgbm").check(f"lightgbm_search.{index}", setting)
        return self

    @model_validator(mode="after")
    def _holdout_inside_window(self) -> Training:
        if self.holdout_days >= self.window_days:
            raise ValueError("holdout_days must be smaller than window_days, or nothing is left to train on")
        return self


Tier = Literal["block", "warn"]
RULE_KINDS = (
    "unreadable_object", "object_too_large", "empty_day", "bad_lines", "not_null", "unique_event_id", "agent_id",
    "action_in_set", "propensity_range", "reward_valid", "ts_in_day", "context_non_null", "in_range",
    "in_vocabulary", "rows_per_day", "drift", "reward_rate", "text_length", "embedding_valid", "embedding_norm",
    "feedback_duplicate", "feedback_unknown_event", "feedback_rate",
)  # fmt: skip
# The log contract itself: a row that breaks one is not a decision the estimators can use (a zero propensity
# divides by zero, a reward of 7 is no label), so these always block and a spec cannot lower them.
CONTRACT_RULES = ("not_null", "unique_event_id", "agent_id", "action_in_set", "propensity_range", "reward_valid",
                  "ts_in_day", "feedback_duplicate")  # fmt: skip
# Rule kinds judged per context feature, and so the only ones a `kind:feature` tier key may name.
FEATURE_RULES = {
    "context_non_null": "any",
    "drift": "any",
    "in_vocabulary": "category",
    "in_range": "number",
    "text_length": "text",
    "embedding_valid": "embedding",
    "embedding_norm": "embedding",
}


class RewardRate(_Strict):
    """Outcomes are data too: a broken reward join logs every reward as 0. Each acting version's rate on a day is
    tested against its own earlier days (or its deploy-time estimate); a change is refused when it is larger than
    `max_change` (a share of the reference rate with `scale: relative`, a rate difference with `absolute`) and
    significant at `alpha` (see reward_rate.py)."""

    max_change: float = Field(default=0.25, gt=0.0, le=1.0)
    scale: Literal["relative", "absolute"] = "relative"
    alpha: float = Field(default=0.02, gt=0.0, lt=0.5)


class Validation(_Strict):
    """How strict the data gate is; `tiers` overrides a rule kind, or one kind for one feature."""

    min_rows_per_day: int = Field(default=1, ge=0)
    max_bad_line_fraction: float = Field(default=0.001, ge=0.0, le=1.0)
    max_drift_psi: float = Field(default=0.2, gt=0.0, le=100.0)
    # Caps that bound a day's reading whatever its objects hold (see log_reader.py): an object stored larger
    # than max_object_bytes is never fetched, one that decompresses past max_decompressed_bytes is stopped
    # there, and a line longer than max_line_bytes is a bad line. Above a cap the object is `object_too_large`.
    max_object_bytes: int = Field(default=512 * 2**20, ge=2**10, le=16 * 2**30)
    max_decompressed_bytes: int = Field(default=2 * 2**30, ge=2**10, le=16 * 2**30)
    max_line_bytes: int = Field(default=2**20, ge=2**10, le=2**30)
    reward_rate: RewardRate = Field(default_factory=RewardRate)
    tiers: dict[str, Tier] = Field(default_factory=dict)
    # A day of the window before the run's own that the gate refused: left out of training and evaluation
    # (named in the decision and report), or `block` to refuse the whole run as long as it is in the window.
    refused_past_days: Literal["exclude", "block"] = "exclude"
    # Fewer usable days than this (after leaving refused ones out) refuses the run; default holdout_days + 1.
    min_usable_days: int | None = Field(default=None, ge=2)

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "max_reward_rate_change" in raw:
            raise ValueError("max_reward_rate_change is now reward_rate: {max_change: ..., scale: relative|absolute, "
                             "alpha: ...}; the old value was an absolute change (scale: absolute)")  # fmt: skip
        return raw

    @model_validator(mode="after")
    def _known_rules(self) -> Validation:
        unknown = [rule for rule in self.tiers if rule.split(":", 1)[0] not in RULE_KINDS]
        if unknown:
            raise ValueError(f"unknown rule(s) in tiers: {unknown}; known kinds: {', '.join(RULE_KINDS)}")
        lowered = [
            rule for rule, tier in self.tiers.items() if rule.split(":", 1)[0] in CONTRACT_RULES and tier != "block"
        ]
        if lowered:
            raise ValueError(f"tiers {lowered}: contract rules always block ({', '.join(CONTRACT_RULES)})")
        return self


class Floors(_Strict):
    """The least a model must reach on today's holdout, whatever the champion does; a floor left out is not judged.

    Log loss and Brier score depend on the reward rate (a model of a 3% rate has a log loss near 0.13, one of a
    40% rate near 0.6), so they are best stated as skill against the base-rate predictor of the same holdout:
    1 - loss / loss of predicting the holdout's mean reward for every row (0: no better than the base rate).
    The absolute forms stay for agents whose rate never moves.
    """

    min_roc_auc: float | None = Field(default=None, ge=0.0, le=1.0)
    min_log_loss_skill: float | None = Field(default=None, gt=-1.0, lt=1.0)
    min_brier_skill: float | None = Field(default=None, gt=-1.0, lt=1.0)
    max_log_loss: float | None = Field(default=None, gt=0.0)
    max_brier: float | None = Field(default=None, gt=0.0, le=1.0)
    max_calibration_error: float | None = Field(default=None, gt=0.0, le=1.0)


class MaxRegression(_Strict):
    roc_auc: float = Field(ge=0.0)
    log_loss: float = Field(ge=0.0)
    brier: float = Field(ge=0.0)
    calibration_error: float = Field(ge=0.0)


class Slices(_Strict):
    """Sub-populations that must not regress: each logged action, and each value of these features."""

    features: list[str] = Field(default_factory=list)
    min_rows: int = Field(default=100, ge=10)
    max_auc_drop: float = Field(default=0.05, ge=0.0)


class Evidence(_Strict):
    """The least a holdout must hold before any comparison is believed; below it the decision is a named refusal."""

    min_holdout_rows: int = Field(default=200, ge=1)
    min_positive_rewards: int = Field(default=20, ge=1)  # negatives are needed too: at least one
    min_matched_rows: int = Field(default=30, ge=1)  # rows where a compared policy picks the logged action


class PolicyValue(_Strict):
    """How a greedy policy is valued on the holdout (see evaluate/estimators.py): `snips` (self-normalised
    inverse propensity scoring) or `dr` (self-normalised doubly robust: a reward model's prediction, corrected
    by the propensity-weighted residuals of the rows the policy matches). `reward_model` names the candidate whose
    fit on the run's training days serves as DR's reward model; by default it is the champion when it was trained
    on days before the holdout, else the run's first candidate. None is ever fitted on the holdout it helps judge.

    Beside the margin on the 95% lower bound, the paired difference's one-sided lower bound at `confidence` must
    reach `min_difference` (see evaluate/rules.py): at the defaults, a challenger no better than the champion,
    judged alone, passes on at most one night in five whichever estimator judges, as far as its interval is
    honest; the night's winner is the best of the candidates that pass, so its chance is higher (README);
    `confidence: 0.5` asks it of the estimate itself, and `min_difference: -1` leaves the margin alone to judge
    (a pure non-inferiority test)."""

    estimator: Literal["snips", "dr"] = "dr"
    reward_model: Literal[CANDIDATE_NAMES] | None = None
    min_difference: float = Field(default=0.0, ge=-1.0, le=1.0)  # on the reward scaled onto [0, 1]
    confidence: float = Field(default=0.8, ge=0.5, lt=1.0)  # one-sided, of the bound that must reach min_difference


class Gate(_Strict):
    primary_metric: Literal["roc_auc", "log_loss", "brier", "calibration_error", "rmse", "mae", "policy_value"]
    floors: Floors
    max_regression: MaxRegression
    policy_value_margin: float = Field(ge=0.0, le=1.0)  # on the reward scaled onto [0, 1]
    policy_value: PolicyValue = Field(default_factory=PolicyValue)
    slices: Slices = Field(default_factory=Slices)
    evidence: Evidence = Field(default_factory=Evidence)
    # The champion is held to today's floors too. When it fails one, keeping it is no safe default: `replace`
    # judges the candidates on the floors and the policy value against it (no regression or slice rules against
    # a model that fails the floors) and deploys the best that passes; `alert` keeps it, and the run ends red so
    # that its notification (`failed`) reaches an operator.
    failing_champion: Literal["replace", "alert"] = "replace"


class Approval(_Strict):
    """A human approves each deploy in the Airflow UI; no answer within the timeout keeps the champion."""

    required: bool = False
    timeout_hours: float = Field(default=24.0, gt=0.0, le=24 * 30)


class Release(_Strict):
    """How a model that passed the offline gate reaches the agent's traffic.

    `direct` swaps it in for every request. `canary` first serves it to `share` of
    the routing keys beside the champion; the promotion DAG then compares the two
    arms on the agent's own logs and promotes the canary only when both arms hold
    `min_events_per_arm` events and the 95% lower bound of (canary - champion)
    mean reward is above `-margin`. It aborts when the upper bound is below
    `-margin`, or when `max_days` days of logs have given no verdict.
    """

    mode: Literal["direct", "canary"] = "direct"
    share: float = Field(default=0.1, gt=0.0, le=0.5)
    min_events_per_arm: int = Field(default=1000, ge=30)
    margin: float = Field(default=0.01, ge=0.0, le=1.0)
    max_days: int = Field(default=7, ge=1, le=60)


NOTIFY_EVENTS = ("failed", "data_rejected", "kept_champion", "deployed", "deadline_missed")
CONN_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$"  # an Airflow connection id
NOTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"  # a dotted path to a class


class Notifier(_Strict):
    """Any Airflow notifier (a `BaseNotifier` subclass) by its class, built with `kwargs`. Its templated fields
    are rendered with `notification` in the context (`{{ notification.subject }}`, `.text`, `.url`, `.event`),
    so the spec says where the message goes and the pipeline says what it is."""

    notifier: str = Field(pattern=NOTIFIER_PATTERN, max_length=200)
    kwargs: dict[str, Any] = Field(default_factory=dict, max_length=32)


class Notifications(_Strict):
    """Who hears about a run, and on which outcomes: a failed run, a refusal by the data gate, a champion kept
    by the model gate, a deploy (or a canary started), a run still unfinished at its deadline. E-mail goes
    through Airflow's SMTP notifier and the connection `smtp_default`, Slack through the Slack provider's
    webhook notifier and each named connection; other notifiers by their class."""

    email: list[str] = Field(default_factory=list, max_length=50)
    slack: list[Annotated[str, StringConstraints(pattern=CONN_ID_PATTERN)]] = Field(default_factory=list,
                                                                                     max_length=20)  # fmt: skip
    notifiers: list[Notifier] = Field(default_factory=list, max_length=20)
    on: list[Literal[NOTIFY_EVENTS]] = Field(
        default_factory=lambda: ["failed", "data_rejected", "deployed", "deadline_missed"]
    )
    # A scheduled run is queued when its day ends; still unfinished this many hours after it was queued, the
    # run's DeadlineAlert tells the channels above (`deadline_missed`).
    deadline_hours: float = Field(default=8.0, gt=0.0, le=24 * 30)

    @property
    def channels(self) -> bool:
        return bool(self.email or self.slack or self.notifiers)


# What a team's role may do with an agent's DAGs (retrain_ and canary_), as FAB's DAG-level permissions: `read`
# sees them, their runs and the agent on the "Agent models" page; `operate` also triggers, clears and backfills
# runs (and, with FAB's global HITL permissions in its role, approves deploys).
ACCESS_LEVELS = {
    "read": {"DAGs": {"can_read"}, "DAG Runs": {"can_read"}},
    "operate": {"DAGs": {"can_read", "can_edit"}, "DAG Runs": {"can_read", "can_create"}},
}
ACCESS_LEVEL_NAMES = tuple(ACCESS_LEVELS)
ROLE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$"


class AgentSpec(_Strict):
    agent_id: str = Field(pattern=AGENT_ID_PATTERN)
    description: str
    owner: str
    actions: list[str] = Field(min_length=2)
    action_features: dict[str, ActionFeature] = Field(default_factory=dict, max_length=32)
    context: dict[str, Feature] = Field(min_length=1)
    reward: Reward
    training: Training
    schedule: str
    candidates: list[Literal[CANDIDATE_NAMES]] = Field(min_length=1)
    gate: Gate
    validation: Validation = Field(default_factory=Validation)
    approval: Approval = Field(default_factory=Approval)
    release: Release = Field(default_factory=Release)
    notifications: Notifications = Field(default_factory=Notifications)
    # Role name -> access level: which teams see (or run) this agent. Empty: only roles with access to every DAG.
    access: dict[Annotated[str, StringConstraints(pattern=ROLE_NAME_PATTERN)], Literal[ACCESS_LEVEL_NAMES]] = Field(
        default_factory=dict, max_length=50
    )
    # How long after its day ends a run waits for the day's _SUCCESS marker before failing.
    wait_for_logs_hours: float = Field(default=6.0, gt=0.0, le=24 * 30)
    # Days of history the trend on the Agent models page and in each report shows.
    trend_days: int = Field(default=30, ge=7, le=365)

    @model_validator(mode="after")
    def _schedule_is_a_cron(self) -> AgentSpec:
        from croniter import croniter  # the parser Airflow's cron timetables use

        if not croniter.is_valid(self.schedule):
            raise ValueError(f'schedule {self.schedule!r} is not a cron expression (e.g. "0 0 * * *")')
        return self

    @model_validator(mode="after")
    def _no_duplicates(self) -> AgentSpec:
        for name, values in (("actions", self.actions), ("candidates", self.candidates)):
            if len(set(values)) != len(values):
                raise ValueError(f"{name} has duplicates: {values}")
        return self

    @model_validator(mode="after")
    def _every_action_has_its_features(self) -> AgentSpec:
        for name, feature in self.action_features.items():
            missing = [a for a in self.actions if a not in feature.values]
            unknown = [a for a in feature.values if a not in self.actions]
            if missing or unknown:
                raise ValueError(f"action_features.{name}.values must give each action's value: "
                                 f"missing {missing}, not an action {unknown}")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _reward_model_is_a_candidate(self) -> AgentSpec:
        wanted = self.gate.policy_value.reward_model
        if wanted is not None and wanted not in self.candidates:
            raise ValueError(f"gate.policy_value.reward_model '{wanted}' is not one of the candidates "
                             f"{self.candidates}")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _metrics_fit_the_reward(self) -> AgentSpec:
        if self.reward.type == "graded" and (self.gate.primary_metric == "roc_auc" or self.gate.floors.min_roc_auc):
            raise ValueError("gate: ROC AUC needs a binary reward; a graded agent ranks by rmse, mae, log_loss, "
                             "brier, calibration_error or policy_value and has no min_roc_auc floor")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _usable_days_fit_the_window(self) -> AgentSpec:
        wanted = self.validation.min_usable_days
        if wanted is not None and not self.training.holdout_days < wanted <= self.training.window_days:
            raise ValueError(
                f"validation.min_usable_days {wanted} must be more than holdout_days "
                f"({self.training.holdout_days}) and at most window_days ({self.training.window_days})"
            )
        return self

    @property
    def min_usable_days(self) -> int:
        """At least one day to train on beyond the held-out ones, unless the spec asks for more."""
        return self.validation.min_usable_days or self.training.holdout_days + 1

    @model_validator(mode="after")
    def _slices_are_categorical(self) -> AgentSpec:
        for name in self.gate.slices.features:
            feature = self.context.get(name)
            if not isinstance(feature, CategoryFeature | BoolFeature):
                raise ValueError(f"gate.slices.features: '{name}' must be a category or bool context feature")
        return self

    @model_validator(mode="after")
    def _feature_tiers_name_features(self) -> AgentSpec:
        for rule in self.validation.tiers:
            kind, _, feature = rule.partition(":")
            if not feature:
                continue
            if kind not in FEATURE_RULES:
                raise ValueError(f"validation.tiers: '{rule}': only {', '.join(FEATURE_RULES)} take a feature")
            if feature not in self.context:
                raise ValueError(f"validation.tiers: '{rule}': no context feature '{feature}' "
                                 f"(features: {', '.join(self.context)})")  # fmt: skip
            wanted, actual = FEATURE_RULES[kind], self.context[feature]
            if wanted not in ("any", actual.type) and not (wanted == "number" and isinstance(actual, NumericFeature)):
                raise ValueError(f"validation.tiers: '{rule}': {kind} applies to {wanted} features, "
                                 f"'{feature}' is {actual.type}")  # fmt: skip
        return self

    @property
    def dag_id(self) -> str:
        return f"retrain_{self.agent_id}"

    @property
    def access_control(self) -> dict[str, dict[str, set[str]]] | None:
        """The DAGs' `access_control`; None (not `{}`) when the spec names no role, so that FAB keeps DAG-level
        permissions granted by hand instead of revoking them."""
        return {role: ACCESS_LEVELS[level] for role, level in self.access.items()} or None

    @property
    def canary_dag_id(self) -> str:
        return f"canary_{self.agent_id}"


def describe(error: ValidationError, limit: int | None = None) -> str:
    """A pydantic error as "field 'a.b': rule" phrases (the first `limit` of them), for specs and stored records."""
    problems = []
    for item in error.errors()[:limit]:
        field = ".".join(str(part) for part in item["loc"]) or "<top level>"
        problems.append(f"field '{field}': {item['msg']}")
    return "; ".join(problems)


def parse_spec(text: str, source: str) -> AgentSpec:
    """Parse a spec from YAML text; `source` only names it in error messages."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: a spec must be a YAML mapping, got {type(raw).__name__}")
    try:
        spec = AgentSpec.model_validate(raw)
    except ValidationError as exc:
        traps = spec_yaml.explain(text, exc.errors())  # `NO` read as false, `on:` as True: the cause, and the fix
        raise SpecError(f"{source}: {describe(exc)}" + "".join(f"; {trap}" for trap in traps)) from exc
    return spec


def load_spec(path: Path) -> AgentSpec:
    """Load one spec file; its name must be `<agent_id>.yaml` so ids cannot drift. A file that cannot be read as
    UTF-8 text is a SpecError like any other broken spec, so it hides only its own agent."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot be read as UTF-8 text: {exc}") from exc
    spec = parse_spec(text, str(path))
    if path.stem != spec.agent_id:
        raise SpecError(f"{path}: field 'agent_id': '{spec.agent_id}' must match the file name '{path.stem}'")
    return spec


def agents_dir() -> Path:
    """Specs live in include/agents/ unless AGENT_SPECS_DIR points elsewhere (e.g. a specs repo)."""
    return Path(os.environ.get("AGENT_SPECS_DIR") or AGENTS_DIR)


def load_all_specs() -> tuple[list[AgentSpec], dict[str, SpecError]]:
    """Every spec that parses, and the error of each file that does not, by file stem.

    One agent's broken file must not take the others down: the DAG file builds
    every valid agent and shows each broken one on its own.
    """
    specs, errors = [], {}
    for path in sorted(agents_dir().glob("*.yaml")):
        try:
            specs.append(load_spec(path))
        except SpecError as exc:
            errors[path.stem] = exc
    return specs, errors


def load_agent(agent_id: str) -> AgentSpec:
    directory = agents_dir()
    path = directory / f"{agent_id}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(directory.glob("*.yaml")))
        raise SpecError(f"no spec for agent '{agent_id}' in {directory} (known: {known})")
    return load_spec(path)


def with_run_params(spec: AgentSpec, params: dict) -> AgentSpec:
    """The spec as one run uses it, after the overrides an operator chose in the trigger form.

    Re-validated like a file, so a form value the spec would refuse fails the run's first task.
    """
    raw = spec.model_dump()
    raw["training"]["window_days"] = params["window_days"]
    raw["candidates"] = [name for name in spec.candidates if name in params["candidates"]]
    raw["gate"]["policy_value_margin"] = params["policy_value_margin"]
    raw["gate"]["max_regression"]["roc_auc"] = params["max_auc_regression"]
    try:
        return AgentSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"run parameters for {spec.agent_id}: {describe(exc)}") from exc
