"""The data gate's rules for one day of logs: a Great Expectations suite generated from the spec, with tiers.

The suite is derived from the spec rather than written per agent, so adding an
agent needs no validation code and the rules can never drift from the contract.
Every rule is judged on one day's rows, so a bad day cannot hide behind clean
ones (a `mostly` rule averaged over a week would). Every rule has a tier:
`block` (the day is refused) or `warn` (recorded, the day is used), set per rule
kind or per feature in the spec. Faults found while reading the logs (see
log_reader.py) are rules of the same gate. A failed rule names the field and
example rows (object key and line).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta

from agent_retraining.contract import EVENT_FIELDS, context_column
from agent_retraining.datagate.reading import DayOfLogs
from agent_retraining.datagate.rules import EXAMPLES, check, tier_of
from agent_retraining.datagate.wide_rules import wide_feature_checks
from agent_retraining.spec import AgentSpec, CategoryFeature, NumericFeature


def build_suite(context, spec: AgentSpec, day: date):
    """The expectations every day of this agent's logs must meet, each tagged with its rule kind and tier."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = context.suites.add(gx.ExpectationSuite(name=f"{spec.agent_id}-log-contract-v1"))

    def add(kind: str, expectation_class, column: str, **kwargs):
        meta = {"rule": f"{kind}:{column}", "tier": tier_of(spec, kind, column)}
        suite.add_expectation(expectation_class(column=column, meta=meta, **kwargs))

    for column, (kind, nullable) in EVENT_FIELDS.items():
        if not nullable and kind != "object":  # the context is checked feature by feature below
            add("not_null", gxe.ExpectColumnValuesToNotBeNull, column)
    add("unique_event_id", gxe.ExpectColumnValuesToBeUnique, "event_id")
    add("agent_id", gxe.ExpectColumnValuesToBeInSet, "agent_id", value_set=[spec.agent_id])
    add("action_in_set", gxe.ExpectColumnValuesToBeInSet, "action", value_set=list(spec.actions))
    add("propensity_range", gxe.ExpectColumnValuesToBeBetween, "propensity", min_value=0.0, max_value=1.0,
        strict_min=True)  # fmt: skip
    if spec.reward.type == "binary":
        add("reward_valid", gxe.ExpectColumnValuesToBeInSet, "reward", value_set=[0.0, 1.0])
    else:
        low, high = spec.reward.range
        add("reward_valid", gxe.ExpectColumnValuesToBeBetween, "reward", min_value=low, max_value=high)
    add("ts_in_day", gxe.ExpectColumnValuesToBeBetween, "ts", min_value=datetime.combine(day, time(), UTC),
        max_value=datetime.combine(day + timedelta(days=1), time(), UTC), strict_max=True)  # fmt: skip
    for name, feature in spec.context.items():
        column = context_column(name)
        add("context_non_null", gxe.ExpectColumnValuesToNotBeNull, column, mostly=1.0 - feature.max_null_fraction)
        if isinstance(feature, CategoryFeature):
            add("in_vocabulary", gxe.ExpectColumnValuesToBeInSet, column, value_set=list(feature.vocabulary),
                mostly=feature.min_in_vocabulary)  # fmt: skip
        elif isinstance(feature, NumericFeature):
            add("in_range", gxe.ExpectColumnValuesToBeBetween, column, min_value=feature.min, max_value=feature.max)
    return suite


def _gx_context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _plain(value):
    """A failing value as JSON can hold it: pandas' missing values become None, timestamps text."""
    import pandas as pd

    if value is None or (not isinstance(value, str | list | dict) and pd.isna(value)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "inf": strict JSON has no infinity, and the value is the point of the example
    return value.isoformat() if hasattr(value, "isoformat") else value


def run_suite(spec: AgentSpec, day: date, frame):
    """Validate one day's rows; returns GX's result and one plain-JSON check per expectation.

    Two passes, because locating failing rows is most of GX's cost: every rule
    first with a pass/fail answer only, then each failing rule alone with every
    failing row's source key and line (the common, clean night skips the second).
    """
    context = _gx_context()
    suite = build_suite(context, spec, day)
    batch = (
        context.data_sources.add_pandas("day")
        .add_dataframe_asset(day.isoformat())
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(suite, result_format={"result_format": "BOOLEAN_ONLY"})
    located_rows = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": ["source_key", "source_line"],
        "partial_unexpected_count": EXAMPLES,
    }
    for position, item in enumerate(result.results):
        if not item.success:
            expectation = next(e for e in suite.expectations if e.meta == item.expectation_config.meta)
            result.results[position] = batch.validate(expectation, result_format=located_rows)
    checks = []
    for item in result.results:
        config, details = item.expectation_config, item.result or {}
        located = details.get("unexpected_index_list") or []
        values = details.get("unexpected_list") or []
        rows = [
            {"key": str(row.get("source_key")), "line": int(row.get("source_line")), "value": _plain(value)}
            for row, value in zip(located, values, strict=False)
        ]
        limits = {k: v for k, v in config.kwargs.items() if k not in ("column", "batch_id") and v is not None}
        column = config.kwargs.get("column")
        raised = item.exception_info.get("raised_exception")
        message = f"field '{column}' {config.type}({', '.join(f'{k}={v}' for k, v in sorted(limits.items()))}): "
        message += f"{details['unexpected_count']} of {len(frame)} rows fail" if details else "passes"
        if raised:
            message += f" [{item.exception_info.get('exception_message')}]"
        checks.append(
            check(
                config.meta["rule"],
                config.meta["tier"],
                item.success,
                message,
                column=column,
                observed=details.get("unexpected_percent"),
                examples=rows[:EXAMPLES],
                rejected=rows,
            )  # fmt: skip
        )
    return result, checks


def read_fault_checks(spec: AgentSpec, logs: DayOfLogs) -> list[dict]:
    """Faults found while reading the day's objects, as checks of the gate."""
    checks = [
        check(item["rule"], tier_of(spec, item["rule"]), False, item["message"], examples=[item])
        for item in logs.faults
        if item["rule"] != "bad_lines"  # judged for the whole day below, against the spec's limit
    ]
    bad = [item for item in logs.faults if item["rule"] == "bad_lines"]
    limit = spec.validation.max_bad_line_fraction
    fraction = logs.bad_lines / logs.lines if logs.lines else 0.0
    where = "; ".join(f"{e['key']} line {e['line']} field '{e['field']}': {e['message']}" for e in bad[:3])
    message = f"{logs.day}: {logs.bad_lines} of {logs.lines} lines unreadable ({fraction:.3%}, limit {limit:.3%})" + (
        f", quarantined, e.g. {where}" if where else ""
    )
    checks.append(check("bad_lines", tier_of(spec, "bad_lines"), fraction <= limit, message, observed=fraction,
                        examples=bad[:EXAMPLES]))  # fmt: skip
    floor, rows = spec.validation.min_rows_per_day, logs.table.num_rows
    checks.append(check("rows_per_day", tier_of(spec, "rows_per_day"), rows >= floor,
                        f"{logs.day}: {rows} usable rows, floor {floor}", observed=rows))  # fmt: skip
    return checks


def gate_checks(spec: AgentSpec, logs: DayOfLogs):
    """Every rule of one day: reading faults and the GX suite; returns GX's result (for Data Docs) and the checks.

    Takes the day's rows over: GX needs pandas, so the Arrow columns are handed to it and freed as they
    convert (`dt` left out: the suite does not check it, and dates would become Python objects), and the
    day is in memory once.
    """
    fault_checks = read_fault_checks(spec, logs) + wide_feature_checks(spec, logs.table)
    columns = logs.table.drop_columns(["dt"])
    logs.table = None
    frame = columns.to_pandas(split_blocks=True, self_destruct=True)
    del columns
    gx_result, gx_checks = run_suite(spec, logs.day, frame)
    return gx_result, fault_checks + gx_checks


def data_docs_html(result) -> str:
    """GX's own rendering of the validation result, as one HTML page."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    return DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(result))
