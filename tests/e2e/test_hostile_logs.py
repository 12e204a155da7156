"""Hostile logs through real DAG runs on the local S3 server: nothing a line holds crashes a night.

- a day holding one line whose propensity is 1e400 (beside thousands of good ones) is used, that line
  quarantined with its reason;
- a day holding a decompression bomb is a named refusal (`object_too_large`), judged within bounded memory;
- the next night runs with that day left out and says why, and a category value that is math text to
  matplotlib (`$\\sqrt{$`), in a slice of its own, and a line of invalid UTF-8 still give a `report.html`.
"""

import gzip
import json
import subprocess
import sys
import textwrap
from datetime import date, timedelta

import pytest

from agent_retraining.contract import day_prefix
from agent_retraining.dev.simulate import World, day_events, write_day
from agent_retraining.storage import get_bytes, put_bytes, read_json
from tests.conftest import REPO, spec_variant

START = date(2026, 7, 1)
EVENTS = 3000
MATH_TEXT = "$\\sqrt{$"
BOMB_BYTES = 300 * 2**20  # of newlines, from a gzip of about 300 KB
CAP = 32 * 2**20  # the agent's max_decompressed_bytes


@pytest.fixture
def hostile_agent(support_bot, install):
    validation = {**support_bot.validation.model_dump(), "max_decompressed_bytes": CAP}
    gate = {**support_bot.gate.model_dump(), "slices": {"features": ["channel"], "min_rows": 10,
                                                         "max_auc_drop": 1.0}}  # fmt: skip
    training = {**support_bot.training.model_dump(), "window_days": 3, "lightgbm_search": []}
    return install(spec_variant(support_bot, agent_id="hostile-bot", validation=validation, gate=gate,
                                training=training, candidates=["logistic_regression"]))  # fmt: skip


def _lines(events) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()


def _put_day(s3, buckets, spec, day: date, objects: dict[str, bytes]) -> None:
    for name, body in objects.items():
        put_bytes(s3, buckets.logs, day_prefix(spec.agent_id, day) + name, body)
    put_bytes(s3, buckets.logs, day_prefix(spec.agent_id, day) + "_SUCCESS", b"")


def _peak_rss_of_judging(spec, day: date) -> tuple[dict, int]:
    """The day judged in a fresh process whose address space is capped; its summary and peak RSS in bytes."""
    child = textwrap.dedent(f"""
        import json, resource, sys
        from datetime import date
        sys.path[:0] = [{str(REPO / "include")!r}]
        from agent_retraining.datagate.validate_day import judge_or_reuse
        from agent_retraining.spec import AgentSpec
        from agent_retraining.storage import buckets_from_env, s3_client_from_env
        import great_expectations, pyarrow, pandas  # what a validate_day task imports anyway
        spec = AgentSpec.model_validate_json(sys.stdin.read())
        vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + 2 * 2**30, resource.RLIM_INFINITY))
        day = date.fromisoformat({day.isoformat()!r})
        summary = judge_or_reuse(s3_client_from_env(), buckets_from_env(), spec, day)
        print(json.dumps({{"summary": summary, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}}))
    """)
    result = subprocess.run([sys.executable, "-c", child], input=spec.model_dump_json(), capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    return out["summary"], out["peak"]


def test_hostile_lines_and_objects_are_named_and_the_nights_go_on(hostile_agent, s3, buckets):
    from agent_retraining.dev.dag_runner import run_night  # the night `make retrain` runs

    spec = hostile_agent
    world = World.for_spec(spec, 3)
    days = [START + timedelta(days=n) for n in range(4)]
    write_day(s3, buckets.logs, spec, days[0], day_events(world, days[0], EVENTS, 3))
    hostile = _lines(day_events(world, days[1], EVENTS, 3)).split(b"\n")
    hostile[41] = hostile[41].replace(b'"propensity": ', b'"propensity": 1e400, "was": ', 1)
    _put_day(s3, buckets, spec, days[1], {"part-00000.jsonl": b"\n".join(hostile)})

    dag_run, report = run_night(spec, days[1])
    assert dag_run.state == "success", report and report["verdict"]
    validation = read_json(s3, buckets.artifacts, report["report_key"].removesuffix("report.json") + "validation.json")
    own = validation["days"][-1]
    assert own["usable"]
    assert own["rows"] == EVENTS - 1
    bad = next(c for c in validation["checks"] if c["rule"] == "bad_lines" and c["day"] == days[1].isoformat())
    assert bad["success"]  # 1 line of 3,000 is within max_bad_line_fraction
    quarantined = f"{spec.agent_id}/quarantine/dt={days[1]}/part-00000.jsonl.rejected-lines.jsonl"
    (line,) = [json.loads(x) for x in get_bytes(s3, buckets.artifacts, quarantined)[0].splitlines()]
    assert (line["line"], line["field"]) == (42, "propensity")
    assert line["message"] == "must be a finite number, got inf"

    bomb = gzip.compress(b"\n" * BOMB_BYTES, compresslevel=9)
    assert len(bomb) < 400_000
    _put_day(s3, buckets, spec, days[2], {"part-00000.jsonl": _lines(day_events(world, days[2], EVENTS, 3)),
                                          "part-00001.jsonl.gz": bomb})  # fmt: skip
    summary, peak = _peak_rss_of_judging(spec, days[2])
    assert not summary["passed"]
    assert peak < 1.5 * 2**30, peak  # the bomb was never inflated past the cap
    verdict = read_json(s3, buckets.artifacts, summary["verdict_key"])
    (too_large,) = [c for c in verdict["checks"] if c["rule"] == "object_too_large"]
    assert (
        f"part-00001.jsonl.gz: decompresses to more than max_decompressed_bytes ({CAP:,} bytes)"
        in (too_large["message"])
    )
    reason = read_json(
        s3, buckets.artifacts, f"{spec.agent_id}/quarantine/dt={days[2]}/part-00001.jsonl.gz.reason.json"
    )
    assert reason["copied"] is False  # quarantined by reference: the bomb is not copied
    dag_run, report = run_night(spec, days[2])
    assert (dag_run.state, report["outcome"]) == ("failed", "data rejected")
    assert "[object_too_large]" in report["validation"]["failures"][0]

    events = day_events(world, days[3], EVENTS, 3)
    for event in events[::200]:  # 15 rows, 0.5%: within min_in_vocabulary, and a slice of its own
        event["context"]["channel"] = MATH_TEXT
    lines = _lines(events).split(b"\n")
    lines[7] = lines[7].replace(b'"session_id": "', b'"session_id": "\xff\xfe', 1)
    _put_day(s3, buckets, spec, days[3], {"part-00000.jsonl": b"\n".join(lines)})
    dag_run, report = run_night(spec, days[3])
    assert dag_run.state == "success", report and report["verdict"]
    assert report["validation"]["left_out"][0]["day"] == days[2].isoformat()
    assert "object_too_large" in report["validation"]["left_out"][0]["why"][0]
    assert f"the data gate left out {days[2]}" in report["decision"]["reason"]
    assert f"channel={MATH_TEXT}" in report["decision"]["metrics"]["logistic_regression"]["slices"]
    page = get_bytes(s3, buckets.artifacts, report["report_html_key"])[0].decode()
    assert f"channel={MATH_TEXT}" in page  # text in the slice table, drawn as text in the plot
    rejected = f"{spec.agent_id}/quarantine/dt={days[3]}/part-00000.jsonl.rejected-lines.jsonl"
    (line,) = [json.loads(x) for x in get_bytes(s3, buckets.artifacts, rejected)[0].splitlines()]
    assert line["line"] == 8
    assert "malformed JSON" in line["message"]
