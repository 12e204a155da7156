"""Speed and memory of a nightly run at scale, against floors measured on the same bytes.

For each scale (events a day, 7-day window) the simulator writes the agent's
logs as gzipped JSONL into the local S3 server (once; kept for later runs), then
every stage of the real pipeline code runs in a fresh process, as an Airflow
task would, timed with its peak RSS:

  snapshot   take_snapshot           floor: raw S3 GET of every object + pyarrow JSON parse of the
                                            same bytes from memory (gunzip included)
  validate   validate_snapshot       floor: one pyarrow.compute pass over the suite's conditions
  features   build_split             (no floor: sort, split and two Parquet writes)
  train      train_candidate, each   floor: bare lightgbm.train on the same matrix, same parameters
  evaluate   evaluate_and_decide     (no floor)

At W1 (1M events a day) it also times the whole DAG run (`dag.test()`, the way
`make retrain` runs it) and the DAG files' parse time. Every figure, floors
included, is the median of `--repeats` runs (3 by default; each run's seconds
are kept in the JSON). Prints one table per scale and the targets of issue #8,
and writes everything as JSON.

    python bench/nightly_run.py --scales 0.25,1,4 [--repeats 3] [--candidates lightgbm] [--no-dag-run]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPEATS = 3  # every figure is the median of this many runs (--repeats)
LAST_DAY = date(2026, 1, 7)  # the window is the 7 days ending here
TARGETS = {
    "snapshot_vs_floor": 1.5,
    "validate_vs_snapshot": 0.5,
    "lightgbm_vs_floor": 1.2,
    "dag_run_seconds": 600,
    "peak_rss_vs_arrow": 3.0,
    "seconds_per_million_spread": 1.25,
}


def bench_environment() -> None:
    """The local S3 server of the embedded default, with buckets of the benchmark's own."""
    sys.path[:0] = [str(REPO / "include"), str(REPO / "plugins")]
    from agent_retraining import local_s3

    local_s3.load_env()
    os.environ.update(LOGS_BUCKET="bench-agent-logs", MODELS_BUCKET="bench-agent-models",
                      ARTIFACTS_BUCKET="bench-agent-artifacts", GX_ANALYTICS_ENABLED="False")  # fmt: skip


def bench_spec(millions: float):
    from agent_retraining.spec import load_agent

    spec = load_agent("support-bot")
    label = f"{millions:g}".replace(".", "p")
    return spec.model_copy(update={"agent_id": f"bench-{label}m"})


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stage_process(stage: str, millions: float, argument, queue) -> None:
    """One stage in a fresh interpreter: imports, S3 reads and writes included, as in a task."""
    bench_environment()
    start = time.perf_counter()
    result = STAGES[stage](bench_spec(millions), argument)
    queue.put({"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb(), "result": result})


def _stage_once(stage: str, millions: float, argument) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_stage_process, args=(stage, millions, argument, queue))
    process.start()
    try:
        outcome = queue.get()
    finally:
        process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"stage {stage} exited with {process.exitcode}")
    return outcome


def median_of(outcomes: list[dict]) -> dict:
    """One figure per measurement: the median over the runs of every number whose key ends in `seconds` (the
    floors time themselves inside `result`) and of the peak RSS; every run's wall seconds are kept."""

    def medians(values: list[dict]) -> dict:
        merged = dict(values[-1])
        for key, value in merged.items():
            if key.endswith("seconds") and isinstance(value, int | float):
                merged[key] = statistics.median(v[key] for v in values)
        return merged

    merged = medians(outcomes)
    merged["peak_rss_mb"] = statistics.median(o["peak_rss_mb"] for o in outcomes)
    if isinstance(merged.get("result"), dict):
        merged["result"] = medians([o["result"] for o in outcomes])
    merged["runs_seconds"] = [round(o["seconds"], 2) for o in outcomes]
    return merged


def run_stage(stage: str, millions: float, argument=None) -> dict:
    outcome = median_of([_stage_once(stage, millions, argument) for _ in range(REPEATS)])
    label = f"{stage}:{argument[0]}" if stage == "train" else stage
    runs = ", ".join(f"{seconds:.1f}" for seconds in outcome["runs_seconds"])
    print(f"  {millions:g}M/day {label}: median {outcome['seconds']:.1f}s of {runs}, "
          f"peak RSS {outcome['peak_rss_mb']:,.0f} MB", flush=True)  # fmt: skip
    return outcome


BENCH_RUN_ID = "bench"  # every stage of one measured run writes into the same run folder


def _run_objects(spec):
    from agent_retraining.contract import run_prefix
    from agent_retraining.snapshot import Window
    from agent_retraining.storage import buckets_from_env, s3_client_from_env

    run_dir = run_prefix(spec.agent_id, LAST_DAY, BENCH_RUN_ID)
    return s3_client_from_env(timeout=300), buckets_from_env(), Window.ending(LAST_DAY, spec), run_dir


# --- stages: the pipeline's own functions -----------------------------------------------------------


def stage_snapshot(spec, _) -> dict:
    from agent_retraining.reporting import clear_run
    from agent_retraining.snapshot import take_snapshot

    s3, buckets, window, run_dir = _run_objects(spec)
    clear_run(s3, buckets, run_dir)
    record = take_snapshot(s3, buckets, spec, window, run_dir)
    return {"rows": record["rows"], "bytes": sum(s["size"] for s in record["sources"])}


def stage_validate(spec, _) -> dict:
    from agent_retraining.validation import validate_snapshot

    s3, buckets, window, run_dir = _run_objects(spec)
    record = validate_snapshot(s3, buckets, spec, window, run_dir)
    return {"rows": record["rows"], "passed": record["passed"]}


def stage_features(spec, _) -> dict:
    from agent_retraining.features import build_split

    s3, buckets, window, run_dir = _run_objects(spec)
    return build_split(s3, buckets, spec, window, run_dir)


def stage_train(spec, candidate_and_split) -> dict:
    from agent_retraining.training import train_candidate

    candidate, split = candidate_and_split
    s3, buckets, window, run_dir = _run_objects(spec)
    return train_candidate(s3, buckets, spec, window, candidate, split["train_key"], run_dir)


def stage_evaluate(spec, split_and_trained) -> dict:
    from agent_retraining.evaluation import RunContext, evaluate_and_decide

    split, trained = split_and_trained
    s3, buckets, window, run_dir = _run_objects(spec)
    decision = evaluate_and_decide(
        s3, buckets, spec, window, split["holdout_key"], trained, run_dir, RunContext(dry_run=True)
    )
    return {"rows": split["holdout_rows"], "winner": decision["winner"]["candidate"]}


# --- floors: the same bytes and matrices, bare libraries ----------------------------------------------


def floor_read(spec, _) -> dict:
    """Raw GET of every object of the window, then pyarrow's JSON parse of those bytes from memory."""
    import gzip
    import io

    import pyarrow.json as pj

    from agent_retraining.contract import SUCCESS_MARKER, day_prefix
    from agent_retraining.snapshot import read_schema
    from agent_retraining.storage import list_keys

    s3, buckets, window, _ = _run_objects(spec)
    start = time.perf_counter()
    keys = [o["key"] for day in window.days for o in list_keys(s3, buckets.logs, day_prefix(spec.agent_id, day))]
    bodies = [s3.get_object(Bucket=buckets.logs, Key=k)["Body"].read() for k in keys if not k.endswith(SUCCESS_MARKER)]
    get_seconds = time.perf_counter() - start
    options = pj.ParseOptions(explicit_schema=read_schema(spec), unexpected_field_behavior="ignore")
    start = time.perf_counter()
    rows = sum(pj.read_json(io.BytesIO(gzip.decompress(body)), parse_options=options).num_rows for body in bodies)
    return {"get_seconds": get_seconds, "parse_seconds": time.perf_counter() - start, "rows": rows,
            "bytes": sum(map(len, bodies))}  # fmt: skip


def floor_validate(spec, _) -> dict:
    """The suite's conditions in bare pyarrow.compute on the snapshot, and the window's size in Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from agent_retraining.contract import EVENT_FIELDS, context_column
    from agent_retraining.spec import CategoryFeature, NumericFeature
    from agent_retraining.storage import read_parquet

    s3, buckets, window, run_dir = _run_objects(spec)
    table = read_parquet(s3, buckets.artifacts, run_dir + "snapshot.parquet")
    start = time.perf_counter()
    failing = sum(table.column(name).null_count for name, (_, nullable) in EVENT_FIELDS.items()
                  if not nullable and name != "context")  # fmt: skip
    failing += table.num_rows - pc.count_distinct(table.column("event_id")).as_py()
    failing += pc.sum(pc.invert(pc.is_in(table.column("agent_id"), pa.array([spec.agent_id])))).as_py() or 0
    failing += pc.sum(pc.invert(pc.is_in(table.column("action"), pa.array(spec.actions)))).as_py() or 0
    propensity = table.column("propensity")
    failing += pc.sum(pc.or_(pc.less_equal(propensity, 0), pc.greater(propensity, 1))).as_py() or 0
    failing += pc.sum(pc.invert(pc.is_in(table.column("reward"), pa.array([0.0, 1.0])))).as_py() or 0
    ts = table.column("ts")
    failing += pc.sum(pc.or_(pc.less(ts, pc.min(ts)), pc.greater(ts, pc.max(ts)))).as_py() or 0
    for name, feature in spec.context.items():
        column = table.column(context_column(name))
        failing += column.null_count
        if isinstance(feature, CategoryFeature):
            failing += pc.sum(pc.invert(pc.is_in(column, pa.array(feature.vocabulary)))).as_py() or 0
        elif isinstance(feature, NumericFeature):
            failing += pc.sum(pc.or_(pc.less(column, feature.min), pc.greater(column, feature.max))).as_py() or 0
    return {"seconds": time.perf_counter() - start, "failing_values": failing, "arrow_bytes": table.nbytes}


def floor_lightgbm(spec, trained: dict) -> dict:
    """`lightgbm.train` alone, on the matrix the candidate was fitted on, with the parameters it used."""
    import lightgbm as lgb

    from agent_retraining.features import encode
    from agent_retraining.storage import read_parquet

    s3, buckets, _, _ = _run_objects(spec)
    matrix, labels = encode(spec, read_parquet(s3, buckets.artifacts, trained["train_key"]))
    params = {k: v for k, v in trained["params"].items() if k != "num_boost_round"}
    start = time.perf_counter()
    lgb.train(params, lgb.Dataset(matrix, labels), num_boost_round=trained["params"]["num_boost_round"])
    return {"seconds": time.perf_counter() - start, "rows": len(labels)}


STAGES = {
    "snapshot": stage_snapshot,
    "validate": stage_validate,
    "features": stage_features,
    "train": stage_train,
    "evaluate": stage_evaluate,
    "floor_read": floor_read,
    "floor_validate": floor_validate,
    "floor_lightgbm": floor_lightgbm,
}


# --- workload, whole-DAG run and parse time -----------------------------------------------------------


def write_workload(spec, millions: float) -> float:
    """The window's logs, written once per scale; returns the seconds spent writing (0 when kept)."""
    from agent_retraining.contract import SUCCESS_MARKER, day_prefix
    from agent_retraining.simulate import World, day_table, write_day
    from agent_retraining.snapshot import Window
    from agent_retraining.storage import buckets_from_env, exists, s3_client_from_env

    s3, bucket = s3_client_from_env(timeout=300), buckets_from_env().logs
    window = Window.ending(LAST_DAY, spec)
    if all(exists(s3, bucket, day_prefix(spec.agent_id, day) + SUCCESS_MARKER) for day in window.days):
        return 0.0
    start = time.perf_counter()
    world = World.for_spec(spec, 0)
    for day in window.days:
        write_day(s3, bucket, spec, day, day_table(world, day, int(millions * 1_000_000), 0))
    return time.perf_counter() - start


def dag_run(spec, log: Path) -> dict:
    """The agent's DAG end to end with `dag.test()`, as `make retrain` runs it, in a child process."""
    with tempfile.TemporaryDirectory() as specs:
        (Path(specs) / f"{spec.agent_id}.yaml").write_text(json.dumps(spec.model_dump(mode="json")))
        env = {**os.environ, "AGENT_SPECS_DIR": specs}
        start = time.perf_counter()
        command = [sys.executable, str(REPO / "scripts/retrain.py"), "--agent", spec.agent_id, "--day",
                   LAST_DAY.isoformat()]  # fmt: skip
        with open(log, "wb") as output:
            process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS
            process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            print(f"the DAG run failed; its log: {log}")
    return {"seconds": seconds, "succeeded": process.returncode == 0, "peak_rss_mb": usage.ru_maxrss / 1024}


def dag_parse_seconds() -> dict:
    """Per DAG file, the time Airflow's DagBag takes to parse it (as the dag-processor does)."""
    code = (
        "import json; from airflow.dag_processing.dagbag import DagBag; "
        f"bag = DagBag(dag_folder={str(REPO / 'dags')!r}); "
        "print(json.dumps({s.file: s.duration.total_seconds() for s in bag.dagbag_stats}))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


# --- the benchmark --------------------------------------------------------------------------------------


def bench_scale(millions: float, candidates: list[str]) -> dict:
    spec = bench_spec(millions)
    generated = write_workload(spec, millions)
    stages = {"snapshot": run_stage("snapshot", millions)}
    rows = stages["snapshot"]["result"]["rows"]
    floors = {"read": run_stage("floor_read", millions), "validate": run_stage("floor_validate", millions)}
    stages["validate"] = run_stage("validate", millions)
    stages["features"] = run_stage("features", millions)
    split = stages["features"]["result"]
    trained = []
    for candidate in candidates:
        stages[f"train:{candidate}"] = run_stage("train", millions, (candidate, split))
        trained.append(stages[f"train:{candidate}"]["result"])
    if "lightgbm" in candidates:
        lightgbm = stages["train:lightgbm"]["result"]
        floors["lightgbm"] = run_stage("floor_lightgbm", millions, {**lightgbm, "train_key": split["train_key"]})
    stages["evaluate"] = run_stage("evaluate", millions, (split, trained))
    return {"millions_per_day": millions, "rows": rows, "generate_seconds": generated, "stages": stages,
            "floors": floors, "arrow_bytes": floors["validate"]["result"]["arrow_bytes"]}  # fmt: skip


def stage_rows(result: dict, name: str) -> int:
    split = result["stages"]["features"]["result"]
    if name.startswith("train:"):
        return split["train_rows"]
    return split["holdout_rows"] if name == "evaluate" else result["rows"]


def read_floor_seconds(result: dict) -> float:
    """The snapshot's floor: raw GET of every object plus pyarrow's parse of the same bytes."""
    read = result["floors"]["read"]["result"]
    return read["get_seconds"] + read["parse_seconds"]


def print_scale(result: dict) -> None:
    floors = result["floors"]
    floor_of = {"snapshot": read_floor_seconds(result), "validate": floors["validate"]["result"]["seconds"]}
    if "lightgbm" in floors:
        floor_of["train:lightgbm"] = floors["lightgbm"]["result"]["seconds"]
    print(f"\n{result['millions_per_day']:g}M events/day x 7 days = {result['rows']:,} rows, "
          f"{result['arrow_bytes'] / 2**30:.2f} GiB in Arrow; every figure the median of {REPEATS} runs")  # fmt: skip
    print(f"{'stage':<26} {'wall s':>8} {'rows/s':>11} {'peak RSS MB':>12} {'floor s':>8} {'x floor':>8}")
    for name, stage in result["stages"].items():
        floor = floor_of.get(name)
        rate = stage_rows(result, name) / stage["seconds"]
        print(f"{name:<26} {stage['seconds']:>8.1f} {rate:>11,.0f} {stage['peak_rss_mb']:>12,.0f} "
              + (f"{floor:>8.1f} {stage['seconds'] / floor:>8.2f}" if floor else f"{'':>8} {'':>8}"))  # fmt: skip
    read = floors["read"]["result"]
    print(f"{'  floor: S3 GET':<26} {read['get_seconds']:>8.1f}   ({read['bytes'] / 2**20:,.0f} MiB gzipped)")
    print(f"{'  floor: JSON parse':<26} {read['parse_seconds']:>8.1f}")


def target(name: str, measured: float, goal: float | None = None, shown: str | None = None) -> dict:
    """One of the issue's targets as measured; a miss says by how much."""
    verdict = "reported" if goal is None else "met" if measured <= goal else f"MISSED by {measured / goal:.2f}x"
    return {"target": name, "measured": shown or round(measured, 2), "goal": goal, "verdict": verdict}


def seconds_per_million_rows(result: dict, stages: tuple[str, ...] | None) -> float:
    """Seconds of the given stages (all when None) per million rows of the window."""
    seconds = sum(s["seconds"] for name, s in result["stages"].items() if stages is None or name in stages)
    return seconds / result["rows"] * 1e6


def targets(results: list[dict], dag: dict | None, w1_millions: float) -> list[dict]:
    checks = []
    for result in results:
        ratio = result["stages"]["snapshot"]["seconds"] / read_floor_seconds(result)
        name = f"{result['millions_per_day']:g}M/day: snapshot / (GET + parse floor)"
        checks.append(target(name, ratio, TARGETS["snapshot_vs_floor"]))
    w1 = next((r for r in results if r["millions_per_day"] == w1_millions), None)
    if w1:
        stages = w1["stages"]
        ratio = stages["validate"]["seconds"] / stages["snapshot"]["seconds"]
        checks.append(target("W1: validate / snapshot", ratio, TARGETS["validate_vs_snapshot"]))
        if "lightgbm" in w1["floors"]:
            ratio = stages["train:lightgbm"]["seconds"] / w1["floors"]["lightgbm"]["result"]["seconds"]
            checks.append(target("W1: train lightgbm / bare lightgbm.train", ratio, TARGETS["lightgbm_vs_floor"]))
        training = {n: s["seconds"] for n, s in stages.items() if n.startswith("train:")}
        slowest = max(training, key=training.get)
        checks.append(target("W1: slowest candidate", training[slowest], shown=f"{slowest} {training[slowest]:.0f}s"))
        peak = max(s["peak_rss_mb"] for s in stages.values()) * 2**20
        checks.append(target("W1: peak RSS of a stage / window in Arrow", peak / w1["arrow_bytes"],
                             TARGETS["peak_rss_vs_arrow"]))  # fmt: skip
    if dag:
        name = "W1: whole DAG run (dag.test), seconds" + ("" if dag["succeeded"] else " (the run FAILED)")
        checks.append(target(name, dag["seconds"], TARGETS["dag_run_seconds"]))
    if len(results) > 1:
        # Stages that see every row of the window; training sees at most training.max_train_rows.
        every_row = ("snapshot", "validate", "features", "evaluate")
        for label, names in (("stages on every row", every_row), ("whole run", None)):
            per_million = {r["millions_per_day"]: seconds_per_million_rows(r, names) for r in results}
            spread = max(per_million.values()) / min(per_million.values())
            shown = ", ".join(f"{m:g}M {s:.1f}s" for m, s in per_million.items())
            goal = TARGETS["seconds_per_million_spread"] if names else None
            checks.append(target(f"s per million rows, {label}: max / min ({shown})", spread, goal))
    return checks


def main() -> None:
    global REPEATS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="0.25,1,4", help="million events a day, comma-separated")
    parser.add_argument("--candidates", default="logistic_regression,lightgbm,torch_mlp")
    parser.add_argument("--w1", type=float, default=1.0, help="the scale of the W1 targets and the DAG run")
    parser.add_argument("--no-dag-run", action="store_true", help="skip the whole-DAG run at W1")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="runs per figure; the median is reported")
    parser.add_argument("--out", default=str(REPO / ".local/bench/nightly-run.json"))
    args = parser.parse_args()
    REPEATS = args.repeats
    bench_environment()
    from agent_retraining import local_s3

    local_s3.up()
    scales = [float(s) for s in args.scales.split(",")]
    results = []
    for millions in scales:
        results.append(bench_scale(millions, args.candidates.split(",")))
        print_scale(results[-1])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    dag = None
    if not args.no_dag_run and args.w1 in scales:
        runs = [dag_run(bench_spec(args.w1), out.with_suffix(".dag.log")) for _ in range(REPEATS)]
        dag = {**median_of(runs), "succeeded": all(run["succeeded"] for run in runs)}
    parse = dag_parse_seconds()
    checks = targets(results, dag, args.w1)
    print("\nDAG files, parse time: " + ", ".join(f"{Path(f).name} {s:.2f}s" for f, s in parse.items()))
    if dag:
        print(f"whole DAG run at W1 (dag.test): median {dag['seconds']:.0f}s of {dag['runs_seconds']}, "
              f"{'success' if dag['succeeded'] else 'FAILED'}")  # fmt: skip
    print(f"\n{'target':<64} {'measured':>16} {'goal':>6}  verdict")
    for item in checks:
        print(f"{item['target']:<64} {item['measured']!s:>16} {item['goal'] or '':>6}  {item['verdict']}")
    report = {"scales": results, "dag_run": dag, "dag_parse_seconds": parse, "targets": checks, "repeats": REPEATS,
              "machine": {"cpus": os.cpu_count()}}  # fmt: skip
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
