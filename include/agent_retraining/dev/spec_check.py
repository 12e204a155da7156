"""`make check-spec AGENT=<agent_id>`: whether a spec is valid, and what it means, before its first night.

The DAG file reads every spec when Airflow parses it, and a mistake then shows only as a `broken-spec` DAG in
the UI. This reads the same file the same way (include/agents/, or the folder AGENT_SPECS_DIR names) from a
shell: a bad spec exits 1 with the error naming the file, the field and any YAML trap behind it (`NO` read as
false), never a stack trace. A valid one is explained: the model input columns it encodes to, what a run's
window and holdout hold at the agent's traffic against what the gate needs to believe a comparison, and
whatever the YAML says that its writer probably did not mean (`seed: 0755` is 493).

    python -m agent_retraining.dev.spec_check support-bot [--events-per-day 20000]
"""

from __future__ import annotations

import argparse
import math
import re
import sys

from agent_retraining import spec_yaml
from agent_retraining.models.encoding import action_features, context_columns, crossed_columns, encoding_of
from agent_retraining.models.features import encoding_id, feature_columns
from agent_retraining.spec import (
    AgentSpec,
    CategoryFeature,
    EmbeddingFeature,
    NumericFeature,
    OpenCategoryFeature,
    SpecError,
    TextFeature,
    agents_dir,
    load_agent,
)

SHOWN = 6  # columns named per feature; the rest counted


def _feature(name: str, spec: AgentSpec) -> str:
    feature = spec.context[name]
    if isinstance(feature, CategoryFeature):
        return f"{name} (category, {len(feature.vocabulary)} values; __other__: outside the vocabulary, or null)"
    if isinstance(feature, OpenCategoryFeature):
        return f"{name} (open category, any text hashed into {feature.buckets} buckets; __missing: null)"
    if isinstance(feature, NumericFeature):
        return (
            f"{name} ({feature.type} in [{feature.min:g}, {feature.max:g}] scaled to [0, 1], clipped; __missing: null)"
        )
    if isinstance(feature, TextFeature):
        return (f"{name} (text: letter trigrams of its first {feature.max_bytes} UTF-8 bytes in "
                f"{feature.buckets} buckets, unit length; ~: their sketch, the part crossed with the actions; "
                "__missing: null)")  # fmt: skip
    if isinstance(feature, EmbeddingFeature):
        return (f"{name} (embedding of {feature.dim} numbers; ~: their sketch, the part crossed with the actions; "
                "__missing: null)")  # fmt: skip
    return f"{name} (bool, 0 or 1; __missing: null)"


def _listed(columns: list[str]) -> str:
    shown = ", ".join(columns[:SHOWN])
    return shown + (f", ... ({len(columns)} columns, the last {columns[-1]})" if len(columns) > SHOWN else "")


def _of_feature(column: str, name: str) -> bool:
    return column in (name, f"{name}__missing") or column.startswith(tuple(f"{name}{s}" for s in "=#~["))


def columns_of(spec: AgentSpec) -> list[str]:
    """The model's input columns, feature by feature: the context, the action and its features, the crossings."""
    encoding = encoding_of(spec)
    context, crossed = context_columns(encoding), len(crossed_columns(encoding))
    features, _ = action_features(encoding)
    lines = [f"The model's input: {len(feature_columns(spec))} columns, encoding_id {encoding_id(spec)} (the "
             "algorithm: docs/serving-contract.md)"]  # fmt: skip
    for name in spec.context:
        lines.append(f"  {_feature(name, spec)}: {_listed([c for c in context if _of_feature(c, name)])}")
    lines.append(f"  the action, one-hot: {', '.join(f'action={a}' for a in spec.actions)}")
    if features:
        lines.append(f"  the action's features: {', '.join(features)}")
    lines.append(f"  the crossed part of the context ({crossed} of its {len(context)} columns) crossed with each "
                 f"action: {len(spec.actions)} x {crossed} = {len(spec.actions) * crossed}"
                 + (f", and with each action-feature column: {len(features)} x {crossed} = {len(features) * crossed}"
                    if features else ""))  # fmt: skip
    return lines


def _at_traffic(spec: AgentSpec, events: int, source: str) -> str:
    training, evidence = spec.training, spec.gate.evidence
    train = events * (training.window_days - training.holdout_days)
    holdout = events * training.holdout_days
    line = f"  at {events:,} events a day ({source}): {train:,} rows to train on"
    if training.max_train_rows and train > training.max_train_rows:
        line += f", sampled to max_train_rows {training.max_train_rows:,}"
    line += f"; {holdout:,} held out"
    if holdout < evidence.min_holdout_rows:
        line += (f", fewer than gate.evidence.min_holdout_rows ({evidence.min_holdout_rows}): every run is a named "
                 "refusal (too little evidence) and nothing is deployed")  # fmt: skip
    else:
        rate = evidence.min_positive_rewards / holdout
        line += (f", enough rows for the gate; its {evidence.min_positive_rewards} positive rewards "
                 f"(gate.evidence) need a reward rate of at least {rate:.2%}")  # fmt: skip
    release = spec.release
    if release.mode == "canary":
        days = math.ceil(release.min_events_per_arm / (events * release.share))
        verdict = "within" if days <= release.max_days else "past, so it would be aborted at"
        line += (f"; a canary on {release.share:.0%} of sessions logs min_events_per_arm "
                 f"({release.min_events_per_arm:,}) in about {days} day(s), {verdict} release.max_days "
                 f"({release.max_days})")  # fmt: skip
    return line


def window_of(spec: AgentSpec, events_per_day: int | None) -> list[str]:
    """What a run's window and holdout hold at the least traffic a usable day has, and at the agent's own."""
    training, reward = spec.training, spec.reward
    unanswered = "counts as the worst reward" if reward.missing == "zero" else "is left out"
    ends = "its own day" if not reward.delayed else (
        f"{reward.delay_days} day(s) before its own (reward.delay_days: the newest decisions whose feedback has had "
        f"its time; a decision without feedback {unanswered})"
    )  # fmt: skip
    scale = "0 or 1" if reward.type == "binary" else (
        f"graded on [{reward.range[0]:g}, {reward.range[1]:g}], learnt and judged scaled onto [0, 1]")  # fmt: skip
    lines = [
        f"Rewards: {scale}; policies valued by {spec.gate.policy_value.estimator} (gate.policy_value); a "
        f"challenger deploys when its gain's one-sided {spec.gate.policy_value.confidence:.0%} lower bound is at "
        f"least {spec.gate.policy_value.min_difference:g} and its 95% lower bound at least "
        f"-{spec.gate.policy_value_margin:g}",
        f"A run's window: {training.window_days} days ending with {ends} (schedule {spec.schedule!r}, UTC); "
        f"the newest {training.holdout_days} held out to evaluate on, {training.window_days - training.holdout_days} "
        f"to train on; at least {spec.min_usable_days} usable days or the run is refused",
        _at_traffic(
            spec, max(spec.validation.min_rows_per_day, 1), "validation.min_rows_per_day: the least a day holds"
        ),
    ]
    if events_per_day:
        lines.append(_at_traffic(spec, events_per_day, "EVENTS_PER_DAY"))
    else:
        lines.append("  (EVENTS_PER_DAY=<n>, or --events-per-day, shows the same at the agent's own traffic)")
    return lines


def notifications_of(spec: AgentSpec) -> list[str]:
    """Who hears about a run: a spec whose failures reach no one should say so before its first night, not after
    a week of red runs nobody saw."""
    notify = spec.notifications
    channels = [*(f"e-mail to {address} (Airflow connection smtp_default)" for address in notify.email),
                *(f"Slack (Airflow connection {conn_id})" for conn_id in notify.slack),
                *(notifier.notifier for notifier in notify.notifiers)]  # fmt: skip
    if not channels:
        return ["Notifications: no channel (notifications.email, .slack, .notifiers): a failed or refused run shows "
                "only in the Airflow UI"]  # fmt: skip
    deadline = (f" (a run still unfinished {notify.deadline_hours:g} h after it was queued)"
                if "deadline_missed" in notify.on else "")  # fmt: skip
    lines = [f"Notifications on {', '.join(notify.on)}{deadline}, to:", *(f"  {channel}" for channel in channels)]
    if "failed" not in notify.on:
        lines.append("  notifications.on leaves out failed: a failed run reaches none of them")
    return lines


def explain(spec: AgentSpec, text: str, events_per_day: int | None) -> str:
    found = spec_yaml.oddities(text)
    yaml_lines = [f"  {line}" for line in found] or ["  nothing that reads differently from how it is written"]
    return "\n".join(
        [
            f"{spec.agent_id}: valid; its DAGs are {spec.dag_id} and {spec.canary_dag_id}",
            "",
            *columns_of(spec),
            "",
            *window_of(spec, events_per_day),
            "",
            *notifications_of(spec),
            "",
            "YAML traps (octal and base-60 numbers, keys given twice):",
            *yaml_lines,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate an agent's spec and explain what it means.")
    parser.add_argument("agent", help="the agent_id: <agent_id>.yaml in include/agents/ or AGENT_SPECS_DIR")
    parser.add_argument("--events-per-day", type=int, help="the agent's expected traffic")
    args = parser.parse_args(argv)
    if args.events_per_day is not None and args.events_per_day < 1:
        parser.error(f"--events-per-day must be at least 1, got {args.events_per_day}")
    try:
        spec = load_agent(args.agent)
        text = (agents_dir() / f"{args.agent}.yaml").read_text()
    except (SpecError, OSError, UnicodeDecodeError) as exc:
        problems = re.sub(r"; (?=field '|line \d+ \()", "\n  ", str(exc))  # one problem a line
        print(f"check-spec: {problems}", file=sys.stderr)
        return 1
    print(explain(spec, text, args.events_per_day))
    return 0


if __name__ == "__main__":
    sys.exit(main())
