"""Speed and memory of a nightly run when the day is the unit of work (issue #13), against floors on the same bytes.

A nightly run with a 7-day window must pay for its one new day, not for seven.
So for each scale (events a day, 7-day window) the simulator writes the agent's
logs as gzipped JSONL into the local S3 server (once; kept for later runs, in
buckets `bench-agent-*`), and two runs of the data gate are measured side by
side, each `validate_day` in a fresh process as a mapped Airflow task, then
`judge_window` in another:

  cold   nothing validated (the agent's `<agent>/days/` prefix in the artifacts bucket deleted first):
         every day of the window read, parsed and judged
  warm   the nightly case: six days validated by earlier nights and reused, the new day
         (its `days/dt=<day>/` prefix deleted first) judged

"snapshot + gate" is the sum of those eight tasks' seconds (each timed in its
process as every stage is: imports, S3 reads and writes included). Then,
on the warm run's window, every later task in a fresh process with its peak RSS:
build_split, train_candidate for each candidate, evaluate_and_decide. Measured
in the same run, on the same bytes:

  read floor      raw S3 GET of the new day's objects + pyarrow's JSON parse of those bytes from memory
                  (gunzip included)
  read vs gate    read_day, then gate_checks on its result, timed apart in one process for the new day
                  (GX's import timed on its own: a cost of the process, not of the rows); the day's size in Arrow
  predict floor   encode_context + action_scores: every model's scores of every action on the holdout, nothing
                  else (the models evaluate scores: the candidates, and the live model when there is one)
  sample          the training sample's size in Arrow

Targets of issue #13, each a ratio measured in the same run and printed with its
value, goal and verdict (nothing is asserted): warm / cold snapshot + gate <= 0.25;
warm snapshot + gate / read floor <= 1.5; gate_checks / read_day <= 0.5; no task's
peak RSS above 3x (one day + the training sample, in Arrow); evaluate / predict
floor <= 2; W3 (10M events a day) completes. At W1 (1M a day) it also times the
warm nightly DAG run end to end (`dag.test()`, the way `make retrain` runs it).
Every figure, floors included, is the median of `--repeats` runs (3 by default;
a run of the gate is the cold and the warm run, one after the other; each run's
seconds are kept in the JSON). Prints one table per scale and the targets, and
writes everything as JSON.

The default scales, 1 and 4 (W1 and 4M a day), cover every target but W3;
`--scales 1,4,10` (`make bench SCALES=1,4,10`) adds W3: 70M events to simulate
the first time (about 3 GB of gzipped JSONL) and every task at 10M rows a day,
hours in all on a 2-core machine. A task that dies (killed for memory, say)
ends its scale, which is reported as not completed; the other scales go on.

    python bench/nightly_run.py --scales 1,4[,10] [--repeats 3] [--candidates lightgbm] [--no-dag-run]
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
LAST_DAY = date(2026, 1, 7)  # the window is the 7 days ending here; this is the nightly run's new day
TARGETS = {
    "warm_vs_cold": 0.25,
    "warm_vs_read_floor": 1.5,
    "gate_vs_read": 0.5,
    "peak_rss_vs_day_and_sample": 3.0,
    "evaluate_vs_predict_floor": 2.0,
}


def bench_environment() -> None:
    """The local S3 server of the embedded default, with buckets of the benchmark's own."""
    sys.path[:0] = [str(REPO / "include"), str(REPO / "plugins")]
    from agent_retraining.dev import local_s3

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


class StageFailed(RuntimeError):
    """A stage's process died (killed for memory, an exception): its scale did not complete."""


def _stage_process(stage: str, millions: float, argument, sender) -> None:
    """One stage in a fresh interpreter: imports, S3 reads and writes included, as in a task."""
    bench_environment()
    start = time.perf_counter()
    result = STAGES[stage](bench_spec(millions), argument)
    sender.send({"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb(), "result": result})


def _stage_once(stage: str, millions: float, argument) -> dict:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_stage_process, args=(stage, millions, argument, sender))
    process.start()
    sender.close()  # the child holds the only sending end: its death ends the pipe
    try:
        outcome = receiver.recv()
    except EOFError:
        outcome = None
    process.join()
    if outcome is None or process.exitcode != 0:
        raise StageFailed(f"{stage} at {millions:g}M/day exited with {process.exitcode}")
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


def run_stage(stage: str, millions: float, argument=None, label: str | None = None) -> dict:
    outcome = median_of([_stage_once(stage, millions, argument) for _ in range(REPEATS)])
    runs = ", ".join(f"{seconds:.1f}" for seconds in outcome["runs_seconds"])
    print(f"  {millions:g}M/day {label or stage}: median {outcome['seconds']:.1f}s of {runs}, "
          f"peak RSS {outcome['peak_rss_mb']:,.0f} MB", flush=True)  # fmt: skip
    return outcome


BENCH_RUN_ID = "bench"  # every stage of one measured run writes into the same run folder


def _run_objects(spec):
    from agent_retraining.contract import run_prefix
    from agent_retraining.storage import buckets_from_env, s3_client_from_env
    from agent_retraining.window import Window

    run_dir = run_prefix(spec.agent_id, LAST_DAY, BENCH_RUN_ID)
    return s3_client_from_env(timeout=300), buckets_from_env(), Window.ending(LAST_DAY, spec), run_dir


def _day_objects(s3, buckets, spec, day: date) -> list[dict]:
    from agent_retraining.datagate.reading import list_day

    return list_day(s3, buckets, spec, day)[0]


# --- stages: the pipeline's own functions -----------------------------------------------------------


def stage_validate_day(spec, day: date) -> dict:
    from agent_retraining.datagate.validate_day import judge_or_reuse

    s3, buckets, _, _ = _run_objects(spec)
    return judge_or_reuse(s3, buckets, spec, day)


def stage_judge_window(spec, checked: list[dict]) -> dict:
    from agent_retraining.datagate.validate import judge_window

    s3, buckets, window, run_dir = _run_objects(spec)
    record = judge_window(s3, buckets, spec, window, checked, run_dir)
    return {"rows": record["rows"], "usable_days": len(record["usable_days"]), "passed": record["passed"]}


def stage_features(spec, _) -> dict:
    from agent_retraining.models.features import build_split

    s3, buckets, window, run_dir = _run_objects(spec)
    return build_split(s3, buckets, spec, window, run_dir)


def stage_train(spec, candidate_and_split) -> dict:
    from agent_retraining.models.training import train_candidate

    candidate, split = candidate_and_split
    s3, buckets, window, run_dir = _run_objects(spec)
    return train_candidate(s3, buckets, spec, window, candidate, split["train_key"], run_dir)


def stage_evaluate(spec, split_and_trained) -> dict:
    from agent_retraining.evaluate.decide import evaluate_and_decide
    from agent_retraining.evaluate.rules import RunContext

    split, trained = split_and_trained
    s3, buckets, window, run_dir = _run_objects(spec)
    decision = evaluate_and_decide(
        s3, buckets, spec, window, split["holdout_key"], trained, run_dir, RunContext(dry_run=True)
    )
    return {"rows": split["holdout_rows"], "winner": decision["winner"]["candidate"]}


# --- floors and sizes: the same bytes, bare libraries -----------------------------------------------


def floor_read(spec, day: date) -> dict:
    """Raw GET of every object of the day, then pyarrow's JSON parse of those bytes from memory."""
    import gzip
    import io

    import pyarrow.json as pj

    from agent_retraining.datagate.reading import read_schema

    s3, buckets, _, _ = _run_objects(spec)
    start = time.perf_counter()
    objects = _day_objects(s3, buckets, spec, day)
    bodies = [s3.get_object(Bucket=buckets.logs, Key=o["key"])["Body"].read() for o in objects]
    get_seconds = time.perf_counter() - start
    options = pj.ParseOptions(explicit_schema=read_schema(spec), unexpected_field_behavior="ignore")
    start = time.perf_counter()
    rows = sum(pj.read_json(io.BytesIO(gzip.decompress(body)), parse_options=options).num_rows for body in bodies)
    return {"get_seconds": get_seconds, "parse_seconds": time.perf_counter() - start, "rows": rows,
            "bytes": sum(map(len, bodies))}  # fmt: skip


def read_and_gate(spec, day: date) -> dict:
    """`read_day`, then `gate_checks` on its result, in one process as `validate_day` runs them; the day in Arrow."""
    from agent_retraining.datagate.expectations import gate_checks
    from agent_retraining.datagate.reading import read_day

    s3, buckets, _, _ = _run_objects(spec)
    objects = _day_objects(s3, buckets, spec, day)
    start = time.perf_counter()
    import great_expectations  # noqa: F401 (timed apart: gate_checks would import it on its first use)

    gx_import_seconds = time.perf_counter() - start
    start = time.perf_counter()
    logs = read_day(s3, buckets, spec, day, objects)
    read_seconds = time.perf_counter() - start
    arrow_bytes, rows = logs.table.nbytes, logs.table.num_rows
    start = time.perf_counter()
    _, checks = gate_checks(spec, logs)
    return {"read_seconds": read_seconds, "gate_seconds": time.perf_counter() - start,
            "gx_import_seconds": gx_import_seconds, "arrow_bytes": arrow_bytes, "rows": rows,
            "failed_checks": [c["rule"] for c in checks if not c["success"]]}  # fmt: skip


def floor_predict(spec, split_and_trained) -> dict:
    """Every model's scores of every action on the holdout, nothing else; the holdout and models loaded first."""
    from agent_retraining.evaluate.decide import champion_model
    from agent_retraining.evaluate.rules import RunContext
    from agent_retraining.manifest import read_manifest
    from agent_retraining.models.artifacts import load_live_model
    from agent_retraining.models.encoding import action_scores
    from agent_retraining.models.features import encode_context
    from agent_retraining.models.training import load
    from agent_retraining.storage import get_bytes, read_parquet

    split, trained = split_and_trained
    s3, buckets, _, _ = _run_objects(spec)
    holdout = read_parquet(s3, buckets.artifacts, split["holdout_key"])
    models = [load(c["framework"], get_bytes(s3, buckets.artifacts, c["artifact_key"])[0], c["params"])
              for c in trained]  # fmt: skip
    live, _ = read_manifest(s3, buckets, spec.agent_id)
    champion, _ = champion_model(spec, live, lambda m: load_live_model(s3, buckets, m), RunContext(dry_run=True))
    models += [champion] if champion else []
    start = time.perf_counter()
    action_scores(encode_context(spec, holdout), len(spec.actions), models)
    return {"seconds": time.perf_counter() - start, "rows": holdout.num_rows, "models": len(models)}


def sample_size(spec, train_key: str) -> dict:
    """The training sample in Arrow, as `train_candidate` reads it."""
    from agent_retraining.storage import read_parquet

    s3, buckets, _, _ = _run_objects(spec)
    table = read_parquet(s3, buckets.artifacts, train_key)
    return {"arrow_bytes": table.nbytes, "rows": table.num_rows}


def write_workload(spec, millions: float) -> dict:
    """The window's logs, written once per scale and kept (a day already marked `_SUCCESS` is left alone).

    Gzipped JSONL parts of EVENTS_PER_PART events, as `simulate.write_day` writes them, but each part generated
    and written on its own (`simulate.write_part`), as many at once as there are cores: memory is a few parts'
    at any scale.
    Each part is a day_table with the part's number as its seed, so event ids (`<day>-<part>-<n>`) are unique.
    """
    from concurrent.futures import ThreadPoolExecutor

    from agent_retraining.contract import SUCCESS_MARKER, day_prefix
    from agent_retraining.dev.simulate import EVENTS_PER_PART, World, day_table, write_part
    from agent_retraining.storage import exists, put_bytes

    s3, buckets, window, _ = _run_objects(spec)
    world, rows = World.for_spec(spec, 0), int(millions * 1_000_000)
    parts = -(-rows // EVENTS_PER_PART)
    written = []

    def generate_part(day: date, part: int) -> None:
        events = day_table(world, day, rows // parts + (part < rows % parts), part)
        write_part(s3, buckets.logs, spec, day, part, events)

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        for day in window.days:
            marker = day_prefix(spec.agent_id, day) + SUCCESS_MARKER
            if not exists(s3, buckets.logs, marker):
                list(pool.map(generate_part, [day] * parts, range(parts)))
                put_bytes(s3, buckets.logs, marker, b"")
                written.append(day.isoformat())
    return {"written_days": written}


STAGES = {
    "validate_day": stage_validate_day,
    "judge_window": stage_judge_window,
    "features": stage_features,
    "train": stage_train,
    "evaluate": stage_evaluate,
    "floor_read": floor_read,
    "read_and_gate": read_and_gate,
    "floor_predict": floor_predict,
    "sample_size": sample_size,
    "write_workload": write_workload,
}


# --- cold and warm runs of the data gate, the whole-DAG run -------------------------------------------


def delete_prefix(spec, prefix: str) -> None:
    from agent_retraining import storage

    s3, buckets, _, _ = _run_objects(spec)
    storage.delete_prefix(s3, buckets.artifacts, prefix)


def forget_validated_days(spec, day: date | None) -> None:
    """Delete the agent's validated days, all of them or only `day`'s (untimed): they are judged again."""
    from agent_retraining.contract import validated_days_prefix

    delete_prefix(spec, validated_days_prefix(spec.agent_id, day))


def snapshot_and_gate(millions: float, kind: str) -> dict:
    """One run of the data gate, cold or warm: each day's `validate_day` in a fresh process, then `judge_window`."""
    spec = bench_spec(millions)
    _, _, window, run_dir = _run_objects(spec)
    forget_validated_days(spec, None if kind == "cold" else window.last)
    delete_prefix(spec, run_dir)  # as days_of_window clears a run's folder
    days = [_stage_once("validate_day", millions, day) for day in window.days]
    verdict = _stage_once("judge_window", millions, [d["result"] for d in days])
    seconds = sum(d["seconds"] for d in days) + verdict["seconds"]
    reused = sum(d["result"]["reused"] for d in days)
    peak = max(o["peak_rss_mb"] for o in [*days, verdict])
    print(f"  {millions:g}M/day {kind}: snapshot + gate {seconds:.1f}s ({len(days)} days: {len(days) - reused} judged, "
          f"{reused} reused), peak RSS {peak:,.0f} MB", flush=True)  # fmt: skip
    return {"seconds": seconds, "days": days, "judge_window": verdict}


def median_run(runs: list[dict]) -> dict:
    """The median run of the gate: its total is the median of the runs' totals, each task the median of its own."""
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "runs_seconds": [round(r["seconds"], 2) for r in runs],
        "days": [median_of([r["days"][i] for r in runs]) for i in range(len(runs[0]["days"]))],
        "judge_window": median_of([r["judge_window"] for r in runs]),
    }


def dag_run(spec, log: Path) -> dict:
    """The agent's warm nightly DAG run end to end with `dag.test()`, as `make retrain` runs it, in a child process:
    the new day's verdict is deleted first, the six days before it are reused."""
    forget_validated_days(spec, LAST_DAY)
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


# --- the benchmark --------------------------------------------------------------------------------------


def bench_scale(millions: float, candidates: list[str]) -> dict:
    """Every measurement of one scale; a task that dies ends the scale, with what was measured so far."""
    result = {"millions_per_day": millions}
    try:
        workload = _stage_once("write_workload", millions, millions)
        written = workload["result"]["written_days"]
        result["generate_seconds"] = workload["seconds"] if written else 0.0
        print(f"  {millions:g}M/day workload: " + (f"{len(written)} days written in {workload['seconds']:.0f}s"
              if written else "kept from an earlier run"), flush=True)  # fmt: skip
        runs = {"cold": [], "warm": []}
        for _ in range(REPEATS):
            for kind, kept in runs.items():
                kept.append(snapshot_and_gate(millions, kind))
        result.update({kind: median_run(kept) for kind, kept in runs.items()})
        result["read_and_gate"] = run_stage("read_and_gate", millions, LAST_DAY, "read_day + gate_checks")
        result["read_floor"] = run_stage("floor_read", millions, LAST_DAY, "floor: GET + parse of the new day")
        tasks = result["tasks"] = {"build_split": run_stage("features", millions, label="build_split")}
        split = tasks["build_split"]["result"]
        result["sample"] = run_stage("sample_size", millions, split["train_key"], "training sample size")
        trained = []
        for candidate in candidates:
            label = f"train:{candidate}"
            tasks[label] = run_stage("train", millions, (candidate, split), label)
            trained.append(tasks[label]["result"])
        tasks["evaluate"] = run_stage("evaluate", millions, (split, trained))
        result["predict_floor"] = run_stage("floor_predict", millions, (split, trained), "floor: prediction")
    except StageFailed as failure:
        result["failed"] = str(failure)
        print(f"  {millions:g}M/day did not complete: {failure}", flush=True)
    return result


def read_floor_seconds(result: dict) -> float:
    read = result["read_floor"]["result"]
    return read["get_seconds"] + read["parse_seconds"]


def task_peaks(result: dict) -> dict[str, float]:
    """Peak RSS (MB) of every task of the nightly run: each validate_day of both runs, judge_window, the rest."""
    peaks = {}
    for kind in ("cold", "warm"):
        for outcome in result[kind]["days"]:
            peaks[f"{kind} validate_day {outcome['result']['day']}"] = outcome["peak_rss_mb"]
        peaks[f"{kind} judge_window"] = result[kind]["judge_window"]["peak_rss_mb"]
    return peaks | {name: task["peak_rss_mb"] for name, task in result["tasks"].items()}


def print_scale(result: dict) -> None:
    millions = result["millions_per_day"]
    if "failed" in result:
        print(f"\n{millions:g}M events/day: did not complete ({result['failed']})")
        return
    gate, sample = result["read_and_gate"]["result"], result["sample"]["result"]
    print(f"\n{millions:g}M events/day x 7 days = {result['warm']['judge_window']['result']['rows']:,} rows; one day "
          f"{gate['arrow_bytes'] / 2**20:,.0f} MiB in Arrow, the training sample {sample['arrow_bytes'] / 2**20:,.0f} "
          f"MiB ({sample['rows']:,} rows); every figure the median of {REPEATS} runs")  # fmt: skip
    print(f"{'snapshot + gate':<28} {'cold s':>8} {'peak RSS MB':>12}   {'warm s':>8} {'peak RSS MB':>12}")
    for cold, warm in zip(result["cold"]["days"], result["warm"]["days"], strict=True):
        how = "reused" if warm["result"]["reused"] else "judged"
        print(f"{'validate_day ' + warm['result']['day']:<28} {cold['seconds']:>8.1f} {cold['peak_rss_mb']:>12,.0f}   "
              f"{warm['seconds']:>8.1f} {warm['peak_rss_mb']:>12,.0f}  {how}")  # fmt: skip
    cold, warm = result["cold"]["judge_window"], result["warm"]["judge_window"]
    print(f"{'judge_window':<28} {cold['seconds']:>8.1f} {cold['peak_rss_mb']:>12,.0f}   "
          f"{warm['seconds']:>8.1f} {warm['peak_rss_mb']:>12,.0f}")  # fmt: skip
    cold, warm = result["cold"]["seconds"], result["warm"]["seconds"]
    print(f"{'total (median of totals)':<28} {cold:>8.1f} {'':>12}   {warm:>8.1f} {'':>12}  {warm / cold:.2f}x cold")
    print(f"\n{'task':<28} {'wall s':>8} {'rows/s':>11} {'peak RSS MB':>12} {'floor s':>8} {'x floor':>8}")
    split = result["tasks"]["build_split"]["result"]
    floor, read = read_floor_seconds(result), result["read_floor"]["result"]
    for name, seconds, rows, floor_seconds in (
        ("read_day, the new day", gate["read_seconds"], gate["rows"], floor),
        ("gate_checks, the new day", gate["gate_seconds"], gate["rows"], gate["read_seconds"]),
    ):
        print(f"{name:<28} {seconds:>8.1f} {rows / seconds:>11,.0f} {'':>12} {floor_seconds:>8.1f} "
              f"{seconds / floor_seconds:>8.2f}")  # fmt: skip
    predict = result["predict_floor"]["result"]
    for name, task in result["tasks"].items():
        rows = split["holdout_rows"] if name == "evaluate" else split["train_rows"]
        if name == "build_split":
            rows = split["train_rows_in_window"] + split["holdout_rows"]
        line = f"{name:<28} {task['seconds']:>8.1f} {rows / task['seconds']:>11,.0f} {task['peak_rss_mb']:>12,.0f}"
        if name == "evaluate":
            line += f" {predict['seconds']:>8.1f} {task['seconds'] / predict['seconds']:>8.2f}"
        print(line)
    print(f"  gate_checks' floor is read_day; GX's import, {gate['gx_import_seconds']:.1f} s, is in neither")
    print(f"  floor of read_day: S3 GET {read['get_seconds']:.1f} s ({read['bytes'] / 2**20:,.0f} MiB gzipped) + "
          f"JSON parse {read['parse_seconds']:.1f} s")  # fmt: skip
    print(f"  floor of evaluate: every action's scores on {predict['rows']:,} rows by the {predict['models']} model(s)")


def target(name: str, measured: float, goal: float | None = None, shown: str | None = None) -> dict:
    """One of the issue's targets as measured; a miss says by how much."""
    verdict = "reported" if goal is None else "met" if measured <= goal else f"MISSED by {measured / goal:.2f}x"
    return {"target": name, "measured": shown or round(measured, 2), "goal": goal, "verdict": verdict}


def targets(results: list[dict], dag: dict | None, w3_millions: float) -> list[dict]:
    checks = []
    for result in results:
        scale = f"{result['millions_per_day']:g}M/day"
        if "failed" in result:
            checks.append({"target": f"{scale}: every task completes", "measured": "no", "goal": "yes",
                           "verdict": f"MISSED: {result['failed']}"})  # fmt: skip
            continue
        warm, gate = result["warm"]["seconds"], result["read_and_gate"]["result"]
        checks.append(target(f"{scale}: warm / cold snapshot + gate", warm / result["cold"]["seconds"],
                             TARGETS["warm_vs_cold"]))  # fmt: skip
        checks.append(target(f"{scale}: warm snapshot + gate / the new day's GET + parse", warm /
                             read_floor_seconds(result), TARGETS["warm_vs_read_floor"]))  # fmt: skip
        checks.append(target(f"{scale}: gate_checks / read_day, the new day", gate["gate_seconds"] /
                             gate["read_seconds"], TARGETS["gate_vs_read"]))  # fmt: skip
        peaks = task_peaks(result)
        worst = max(peaks, key=peaks.get)
        budget = gate["arrow_bytes"] + result["sample"]["result"]["arrow_bytes"]
        ratio = peaks[worst] * 2**20 / budget
        checks.append(target(f"{scale}: peak RSS of a task / (a day + training sample, Arrow)", ratio,
                             TARGETS["peak_rss_vs_day_and_sample"], f"{ratio:.2f} {worst}"))  # fmt: skip
        evaluate = result["tasks"]["evaluate"]["seconds"] / result["predict_floor"]["result"]["seconds"]
        checks.append(target(f"{scale}: evaluate / prediction floor", evaluate, TARGETS["evaluate_vs_predict_floor"]))
    w3 = next((r for r in results if r["millions_per_day"] == w3_millions), None)
    completed = "not run" if w3 is None else "no" if "failed" in w3 else "yes"
    verdict = {"yes": "met", "no": "MISSED", "not run": f"not run (add {w3_millions:g} to the scales)"}[completed]
    checks.append({"target": f"W3 ({w3_millions:g}M/day) completes", "measured": completed, "goal": "yes",
                   "verdict": verdict})  # fmt: skip
    if dag:
        name = "W1: warm nightly DAG run (dag.test), seconds" + ("" if dag["succeeded"] else " (the run FAILED)")
        checks.append(target(name, dag["seconds"]))
    return checks


def main() -> None:
    global REPEATS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,4", help="million events a day, comma-separated (10 is W3)")
    parser.add_argument("--candidates", default="logistic_regression,lightgbm,torch_mlp")
    parser.add_argument("--w1", type=float, default=1.0, help="the scale of the DAG run")
    parser.add_argument("--w3", type=float, default=10.0, help="the scale that must complete on this machine")
    parser.add_argument("--no-dag-run", action="store_true", help="skip the whole-DAG run at W1")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="runs per figure; the median is reported")
    parser.add_argument("--out", default=str(REPO / ".local/bench/nightly-run.json"))
    args = parser.parse_args()
    REPEATS = args.repeats
    bench_environment()
    from agent_retraining.dev import local_s3

    local_s3.up()
    scales = [float(s) for s in args.scales.split(",")]
    results = []
    for millions in scales:
        results.append(bench_scale(millions, args.candidates.split(",")))
        print_scale(results[-1])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    dag = None
    w1 = next((r for r in results if r["millions_per_day"] == args.w1 and "failed" not in r), None)
    if not args.no_dag_run and w1:
        runs = [dag_run(bench_spec(args.w1), out.with_suffix(".dag.log")) for _ in range(REPEATS)]
        dag = {**median_of(runs), "succeeded": all(run["succeeded"] for run in runs)}
        print(f"\nwarm nightly DAG run at {args.w1:g}M/day (dag.test): median {dag['seconds']:.0f}s of "
              f"{dag['runs_seconds']}, peak RSS {dag['peak_rss_mb']:,.0f} MB, "
              f"{'success' if dag['succeeded'] else 'FAILED'}")  # fmt: skip
    checks = targets(results, dag, args.w3)
    print(f"\ntargets of issue #13, every figure the median of {REPEATS} runs")
    print(f"{'target':<64} {'measured':>36} {'goal':>5}  verdict")
    for item in checks:
        print(f"{item['target']:<64} {item['measured']!s:>36} {item['goal'] or '':>5}  {item['verdict']}")
    report = {"scales": results, "dag_run": dag, "targets": checks, "repeats": REPEATS,
              "machine": {"cpus": os.cpu_count()}}  # fmt: skip
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
