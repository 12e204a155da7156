"""What the data gate costs on 1M agent events, beside what reading them costs.

Generates one simulated day of N events in memory (no S3: this isolates CPU
cost), then times, on the same bytes:
  read      - parse JSONL into the snapshot's columns (the snapshot stage's parser);
  floor     - the same conditions as the GX suite checked with bare pyarrow.compute;
  validate  - the whole gate as the validate task runs it (to pandas, GX suite, drift).

    python bench/validation_cost.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from agent_retraining.contract import context_column
from agent_retraining.simulate import World, day_events
from agent_retraining.snapshot import Window, parse_log_object
from agent_retraining.spec import CategoryFeature, NumericFeature, load_agent
from agent_retraining.validation import drift_checks, run_suite

DAY = date(2026, 1, 2)


def compute_floor(table: pa.Table, spec, window: Window) -> int:
    """Bare pyarrow.compute over the suite's conditions; returns the number of failing values."""
    failing = 0
    for column in ("event_id", "ts", "agent_id", "session_id", "action", "propensity", "reward"):
        failing += table.column(column).null_count
    failing += table.num_rows - pc.count_distinct(table.column("event_id")).as_py()
    failing += pc.sum(pc.invert(pc.is_in(table.column("action"), pa.array(spec.actions)))).as_py() or 0
    propensity = table.column("propensity")
    failing += pc.sum(pc.or_(pc.less_equal(propensity, 0), pc.greater(propensity, 1))).as_py() or 0
    failing += pc.sum(pc.invert(pc.is_in(table.column("reward"), pa.array([0.0, 1.0])))).as_py() or 0
    for name, feature in spec.context.items():
        column = table.column(context_column(name))
        failing += column.null_count
        if isinstance(feature, CategoryFeature):
            failing += pc.sum(pc.invert(pc.is_in(column, pa.array(feature.vocabulary)))).as_py() or 0
        elif isinstance(feature, NumericFeature):
            failing += pc.sum(pc.or_(pc.less(column, feature.min), pc.greater(column, feature.max))).as_py() or 0
    return failing


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    spec = load_agent("support-bot")
    window = Window(date(2026, 1, 1), DAY, 1)
    world = World.for_spec(spec, 0)
    half = args.rows // 2
    bodies = [
        "".join(json.dumps(e) + "\n" for e in day_events(world, day, half, 0)).encode() for day in (window.first, DAY)
    ]

    def read():
        return pa.concat_tables(
            [parse_log_object(f"bench/{i}.jsonl", body, spec, day).table for i, (body, day) in
             enumerate(zip(bodies, (window.first, DAY), strict=True))]
        )  # fmt: skip

    table, read_seconds = timed(read)
    _, floor_seconds = timed(compute_floor, table, spec, window)

    def validate():
        frame = table.to_pandas()
        return run_suite(spec, window, frame)[1] + drift_checks(spec, window, frame)

    checks, validate_seconds = timed(validate)
    rows = table.num_rows
    print(f"\n{'stage':<10} {'seconds':>8} {'M rows/s':>9} {'x read':>7} {'x floor':>8}")
    for name, seconds in (("read", read_seconds), ("floor", floor_seconds), ("validate", validate_seconds)):
        print(
            f"{name:<10} {seconds:>8.2f} {rows / seconds / 1e6:>9.2f} {seconds / read_seconds:>7.2f} "
            f"{seconds / floor_seconds:>8.1f}"
        )
    print(f"\n{rows:,} rows, {len(checks)} checks, {sum(not c['success'] for c in checks)} failing")


if __name__ == "__main__":
    main()
