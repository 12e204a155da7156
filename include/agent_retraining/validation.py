"""Data gate: a Great Expectations suite generated from the agent spec.

The suite is derived from the spec rather than written per agent, so adding an
agent needs no validation code and the rules can never drift from the contract.
A failed gate raises with a summary naming the rule, the field and example rows
(object key and line), and the full result is kept in S3 for the report.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from agent_retraining.contract import context_column
from agent_retraining.snapshot import Window
from agent_retraining.spec import AgentSpec, CategoryFeature, NumericFeature
from agent_retraining.storage import Buckets, read_parquet, write_json

EXAMPLES = 5  # failing rows quoted per rule


class DataRejected(Exception):
    """The snapshot broke a blocking rule; nothing may be trained on it."""


def build_suite(context, spec: AgentSpec, window: Window):
    """The expectations every snapshot of this agent must meet."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = context.suites.add(gx.ExpectationSuite(name=f"{spec.agent_id}-log-contract-v1"))
    for column in ("event_id", "ts", "agent_id", "session_id", "action", "propensity", "reward"):
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="event_id"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="agent_id", value_set=[spec.agent_id]))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="action", value_set=list(spec.actions)))
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeBetween(column="propensity", min_value=0.0, max_value=1.0, strict_min=True)
    )
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="reward", value_set=[0.0, 1.0]))
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeBetween(
            column="ts",
            min_value=datetime.combine(window.first, time(), UTC),
            max_value=datetime.combine(window.last + timedelta(days=1), time(), UTC),
            strict_max=True,
        )
    )
    for name, feature in spec.context.items():
        column = context_column(name)
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column, mostly=1.0 - feature.max_null_fraction))
        if isinstance(feature, CategoryFeature):
            suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(feature.vocabulary)))
        elif isinstance(feature, NumericFeature):
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeBetween(column=column, min_value=feature.min, max_value=feature.max)
            )
    return suite


def run_suite(spec: AgentSpec, window: Window, frame) -> list[dict]:
    """Validate a DataFrame; one plain-JSON result per expectation, with failing rows located."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    suite = build_suite(context, spec, window)
    batch = (
        context.data_sources.add_pandas("snapshot")
        .add_dataframe_asset("snapshot")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(
        suite,
        result_format={
            "result_format": "COMPLETE",
            "unexpected_index_column_names": ["source_key", "source_line"],
            "partial_unexpected_count": EXAMPLES,
        },
    )
    outcomes = []
    for item in result.results:
        config, details = item.expectation_config, item.result or {}
        located = details.get("unexpected_index_list") or []
        outcomes.append(
            {
                "rule": config.type,
                "column": config.kwargs.get("column"),
                "kwargs": {k: v for k, v in config.kwargs.items() if k not in ("column", "batch_id")},
                "success": bool(item.success),
                "unexpected_count": details.get("unexpected_count", 0),
                "unexpected_percent": details.get("unexpected_percent"),
                "examples": [
                    {"key": str(row.get("source_key")), "line": int(row.get("source_line")), "value": value}
                    for row, value in zip(
                        located[:EXAMPLES], details.get("unexpected_list", [])[:EXAMPLES], strict=False
                    )
                ],
                "error": item.exception_info.get("exception_message")
                if item.exception_info.get("raised_exception")
                else None,
            }
        )
    return outcomes


def describe_failure(outcome: dict) -> str:
    where = ", ".join(f"{e['key']} line {e['line']} value {e['value']!r}" for e in outcome["examples"][:3])
    limits = ", ".join(f"{k}={v}" for k, v in sorted(outcome["kwargs"].items()) if v is not None)
    text = f"field '{outcome['column']}' broke {outcome['rule']}({limits}): {outcome['unexpected_count']} rows"
    return text + (f", e.g. {where}" if where else "") + (f" [{outcome['error']}]" if outcome["error"] else "")


def validate_snapshot(
    s3, buckets: Buckets, spec: AgentSpec, window: Window, snapshot_key: str, result_key: str
) -> dict:
    """Run the suite on the snapshot, store the result, and raise DataRejected on any failure."""
    frame = read_parquet(s3, buckets.artifacts, snapshot_key).to_pandas()
    outcomes = run_suite(spec, window, frame)
    failures = [describe_failure(o) for o in outcomes if not o["success"]]
    record = {
        "agent_id": spec.agent_id,
        "snapshot_key": snapshot_key,
        "rows": len(frame),
        "passed": not failures,
        "failures": failures,
        "expectations": outcomes,
    }
    write_json(s3, buckets.artifacts, result_key, record)
    if failures:
        raise DataRejected(
            f"{len(failures)} rule(s) failed on s3://{buckets.artifacts}/{snapshot_key}:\n- " + "\n- ".join(failures)
        )
    return record
