"""Data gate: a Great Expectations suite generated from the agent spec, with tiers.

The suite is derived from the spec rather than written per agent, so adding an
agent needs no validation code and the rules can never drift from the contract.
Every rule has a tier: `block` (nothing is trained or deployed) or `warn`
(recorded, the run goes on), set per rule kind or per feature in the spec.
Faults found while reading the logs (see snapshot.py) are rules of the same gate.
A blocked gate raises with a summary naming the rule, the field and example
rows (object key and line); the full result, GX Data Docs and the rejected rows
are kept in S3.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, datetime, time, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agent_retraining.contract import EVENT_FIELDS, context_column, quarantine_prefix
from agent_retraining.snapshot import Window
from agent_retraining.spec import AgentSpec, CategoryFeature, NumericFeature
from agent_retraining.storage import Buckets, put_bytes, read_json, read_parquet, write_json

EXAMPLES = 5  # failing rows quoted per rule
DEFAULT_TIERS = {"drift": "warn", "missing_day": "warn"}


class DataRejected(Exception):
    """The logs broke a blocking rule; nothing may be trained on them."""


def tier_of(spec: AgentSpec, kind: str, column: str | None = None) -> str:
    """The spec's tier for a rule: `kind:feature` wins over `kind`, then the default."""
    tiers = spec.validation.tiers
    feature = column.removeprefix("ctx_") if column else None
    return tiers.get(f"{kind}:{feature}") or tiers.get(kind) or DEFAULT_TIERS.get(kind, "block")


def check(rule: str, tier: str, success: bool, message: str, **details) -> dict:
    return {"rule": rule, "tier": tier, "success": bool(success), "message": message, **details}


def build_suite(context, spec: AgentSpec, window: Window):
    """The expectations every snapshot of this agent must meet, each tagged with its rule kind and tier."""
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
    add("reward_valid", gxe.ExpectColumnValuesToBeInSet, "reward", value_set=[0.0, 1.0])
    add("ts_in_window", gxe.ExpectColumnValuesToBeBetween, "ts",
        min_value=datetime.combine(window.first, time(), UTC),
        max_value=datetime.combine(window.last + timedelta(days=1), time(), UTC), strict_max=True)  # fmt: skip
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


def run_suite(spec: AgentSpec, window: Window, frame):
    """Validate the snapshot frame; returns GX's result and one plain-JSON check per expectation.

    Two passes, because locating failing rows is most of GX's cost: every rule
    first with a pass/fail answer only, then each failing rule alone with every
    failing row's source key and line (the common, clean night skips the second).
    """
    context = _gx_context()
    suite = build_suite(context, spec, window)
    batch = (
        context.data_sources.add_pandas("snapshot")
        .add_dataframe_asset("snapshot")
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


def read_fault_checks(spec: AgentSpec, window: Window, snapshot: dict) -> list[dict]:
    """Faults found while reading the logs, as checks of the gate."""
    checks = []
    for item in snapshot["faults"]:
        if item["rule"] == "bad_lines":
            continue  # judged per day below, against the spec's limit
        runs_own_day = item["rule"] == "missing_day" and item["field"] == window.last.isoformat()
        tier = "block" if runs_own_day else tier_of(spec, item["rule"])
        checks.append(check(item["rule"], tier, False, item["message"], examples=[item]))
    bad_by_day = {}
    for item in snapshot["faults"]:
        if item["rule"] == "bad_lines":
            bad_by_day.setdefault(item["key"].split("/dt=", 1)[1][:10], []).append(item)
    limit = spec.validation.max_bad_line_fraction
    for day, counts in sorted(snapshot["days"].items()):
        fraction = counts["bad_lines"] / counts["lines"] if counts["lines"] else 0.0
        examples = bad_by_day.get(day, [])
        where = "; ".join(f"{e['key']} line {e['line']} field '{e['field']}': {e['message']}" for e in examples[:3])
        message = (
            f"{day}: {counts['bad_lines']} of {counts['lines']} lines unreadable ({fraction:.3%}, limit {limit:.3%})"
            + (f", quarantined, e.g. {where}" if where else "")
        )
        checks.append(
            check(
                f"bad_lines:{day}",
                tier_of(spec, "bad_lines"),
                fraction <= limit,
                message,
                observed=fraction,
                examples=examples[:EXAMPLES],
            )  # fmt: skip
        )
        floor = spec.validation.min_rows_per_day
        checks.append(
            check(
                f"rows_per_day:{day}",
                tier_of(spec, "rows_per_day"),
                counts["rows"] >= floor,
                f"{day}: {counts['rows']} usable rows, floor {floor}",
                observed=counts["rows"],
            )  # fmt: skip
        )
    return checks


def population_stability(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI between two histograms over the same bins."""
    reference = reference_counts / max(reference_counts.sum(), 1) + 1e-4
    current = current_counts / max(current_counts.sum(), 1) + 1e-4
    return float(np.sum((current - reference) * np.log(current / reference)))


def _bins(spec: AgentSpec, name: str, column: pa.ChunkedArray, is_reference: np.ndarray) -> tuple[np.ndarray, int]:
    """A bin number per row: category codes (null last), or reference deciles for numbers (null last)."""
    feature = spec.context[name]
    if isinstance(feature, CategoryFeature) or feature.type == "bool":
        encoded = pc.dictionary_encode(column).combine_chunks()
        codes = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy()
        return codes, len(encoded.dictionary) + 1
    numbers = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    edges = np.unique(np.nanquantile(numbers[is_reference], np.linspace(0.1, 0.9, 9)))
    codes = np.where(np.isnan(numbers), len(edges) + 1, np.searchsorted(edges, numbers))
    return codes, len(edges) + 2


def drift_checks(spec: AgentSpec, window: Window, table: pa.Table) -> list[dict]:
    """Each feature's distribution on the newest day against the earlier days of the window."""
    is_reference = pc.not_equal(table.column("dt"), pa.scalar(window.last, pa.date32())).to_numpy(zero_copy_only=False)
    if is_reference.all() or not is_reference.any():
        return []
    checks = []
    for name in spec.context:
        codes, bins = _bins(spec, name, table.column(context_column(name)), is_reference)
        psi = population_stability(
            np.bincount(codes[is_reference], minlength=bins), np.bincount(codes[~is_reference], minlength=bins)
        )
        limit = spec.validation.max_drift_psi
        checks.append(
            check(
                f"drift:{context_column(name)}",
                tier_of(spec, "drift", name),
                psi <= limit,
                f"field '{context_column(name)}' drift on {window.last} against the earlier days: "
                f"PSI {psi:.3f}, limit {limit}",
                column=context_column(name),
                observed=psi,
            )  # fmt: skip
        )
    return checks


def reward_rate_checks(spec: AgentSpec, window: Window, table: pa.Table) -> list[dict]:
    """The newest day's reward rate against the earlier days' of the window.

    Every row of a broken reward join is valid on its own (a reward of 0 is
    allowed), so no per-row rule sees it; only the day's rate does.
    """
    is_newest = pc.equal(table.column("dt"), pa.scalar(window.last, pa.date32()))
    newest = pc.mean(table.column("reward").filter(is_newest)).as_py()
    earlier = pc.mean(table.column("reward").filter(pc.invert(is_newest))).as_py()
    if newest is None or earlier is None:  # no rows (or no rewards) on one side: rows_per_day and not_null judge it
        return []
    band = spec.validation.max_reward_rate_change
    return [
        check(
            "reward_rate",
            tier_of(spec, "reward_rate"),
            abs(newest - earlier) <= band,
            f"{window.last}: reward rate {newest:.3f} against {earlier:.3f} on the earlier days of the window, "
            f"allowed change {band}",
            column="reward",
            observed=newest,
        )
    ]


def data_docs_html(result) -> str:
    """GX's own rendering of the validation result, as one HTML page."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    return DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(result))


def describe(item: dict) -> str:
    where = ", ".join(f"{e['key']} line {e['line']} value {e['value']!r}" for e in item.get("examples", [])[:3]
                      if "value" in e)  # fmt: skip
    return f"[{item['rule']}] {item['message']}" + (f", e.g. {where}" if where else "")


def validate_snapshot(s3, buckets: Buckets, spec: AgentSpec, window: Window, run_dir: str) -> dict:
    """Run the whole gate on the run's snapshot; store result, Data Docs and rejected rows; raise if blocked."""
    snapshot = read_json(s3, buckets.artifacts, run_dir + "snapshot.json")
    table = read_parquet(s3, buckets.artifacts, snapshot["snapshot_key"])
    rows, shifts = table.num_rows, drift_checks(spec, window, table) + reward_rate_checks(spec, window, table)
    # GX needs pandas: hand the columns over (`dt` left out: the suite does not check it, and dates would
    # become Python objects) and free the Arrow copy as they convert, so the window is in memory once.
    columns = table.drop_columns(["dt"])
    del table
    frame = columns.to_pandas(split_blocks=True, self_destruct=True)
    del columns
    gx_result, gx_checks = run_suite(spec, window, frame)
    checks = read_fault_checks(spec, window, snapshot) + gx_checks + shifts
    blocking = [c for c in checks if not c["success"] and c["tier"] == "block"]
    warnings = [c for c in checks if not c["success"] and c["tier"] == "warn"]
    rejected = [{"rule": c["rule"], **row} for c in blocking for row in c.get("rejected", [])]
    if rejected:
        target = quarantine_prefix(spec.agent_id, window.last) + "rejected-rows.jsonl"
        put_bytes(s3, buckets.artifacts, target, "".join(json.dumps(r, default=str) + "\n" for r in rejected).encode())
    put_bytes(s3, buckets.artifacts, run_dir + "data_docs.html", data_docs_html(gx_result).encode(), "text/html")
    record = {
        "agent_id": spec.agent_id,
        "snapshot_key": snapshot["snapshot_key"],
        "rows": rows,
        "passed": not blocking,
        "failures": [describe(c) for c in blocking],
        "warnings": [describe(c) for c in warnings],
        "rule_counts": dict(Counter(f"{c['tier']}:{'pass' if c['success'] else 'fail'}" for c in checks)),
        "checks": [{k: v for k, v in c.items() if k != "rejected"} for c in checks],
        "data_docs_key": run_dir + "data_docs.html",
    }
    write_json(s3, buckets.artifacts, run_dir + "validation.json", record)
    if blocking:
        raise DataRejected(
            f"{len(blocking)} blocking rule(s) failed for {spec.agent_id} {window.last}:\n- "
            + "\n- ".join(record["failures"])
        )
    return record
