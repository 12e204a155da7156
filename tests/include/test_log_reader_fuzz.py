"""A seeded fuzz of the log reader, under a memory limit: every object gives rows or named faults, never a crash.

The cases are what a hostile or broken writer sends (numbers beyond float or int64, NaN, lone surrogates, bytes
that are not UTF-8, brackets nested 100,000 deep, lines past the cap, decompression bombs, Parquet of the wrong
schema) plus random mutations of valid objects: bytes flipped, truncations, values swapped for others. They run
in a child process whose address space is capped (`resource.RLIMIT_AS`) at what it held after its imports plus
a budget, so a reader that inflates a bomb or a deep structure fails the test by running out of memory.
"""

import gzip
import io
import json
import subprocess
import sys
import textwrap
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import REPO

DAY = date(2026, 3, 10)
CASES = 400
BUDGET = 1536 * 2**20  # address space the child may add to what it holds after its imports
CAPS = {"max_decompressed_bytes": 8 * 2**20, "max_line_bytes": 64 * 2**10}
HOSTILE_VALUES = [1e400, -1e400, 2**70, -(2**70), "NaN", "Infinity", "\ud800", "x" * 100_000, None, [], {}, True,
                  "<script>", "$\\sqrt{$", "\x00\x01\x1b[31m"]  # fmt: skip


def _events(spec, rows: int, seed: int) -> list[dict]:
    from agent_retraining.dev.simulate import World, day_events

    return day_events(World.for_spec(spec, seed), DAY, rows, seed)


def _lines(events) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()


def _with_value(events, rng, value) -> bytes:
    """One field of one event (a contract field or a feature) given a hostile value, written raw where JSON
    cannot say it (1e400, NaN, invalid UTF-8)."""
    event = dict(events[int(rng.integers(len(events)))])
    event["context"] = dict(event["context"])
    target = event if rng.random() < 0.5 else event["context"]
    field = str(rng.choice(sorted(target)))
    marker = "@@HOSTILE@@"
    target[field] = marker
    raw = json.dumps(value) if not isinstance(value, float) else repr(value).replace("inf", "1e400")
    line = json.dumps(event).replace(f'"{marker}"', raw if value not in ("NaN", "Infinity") else value).encode()
    body = _lines(events).split(b"\n")
    body[int(rng.integers(len(events)))] = line
    return b"\n".join(body)


def _parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _case(spec, rng) -> tuple[str, bytes, str]:
    """(object key, body, what was done) for one fuzz case."""
    events = _events(spec, int(rng.integers(1, 40)), int(rng.integers(1000)))
    kind = int(rng.integers(12))
    body = _lines(events)
    if kind == 0:  # a hostile value in one field
        value = HOSTILE_VALUES[int(rng.integers(len(HOSTILE_VALUES)))]
        return "d/a.jsonl", _with_value(events, rng, value), f"value {str(value)[:20]!r}"
    if kind == 1:  # bytes flipped
        data = bytearray(body)
        for at in rng.integers(0, len(data), size=int(rng.integers(1, 20))):
            data[at] = int(rng.integers(256))
        return "d/a.jsonl", bytes(data), "bytes flipped"
    if kind == 2:  # truncated anywhere
        return "d/a.jsonl", body[: int(rng.integers(len(body)))], "truncated"
    if kind == 3:  # nested far beyond any recursion limit, beside one malformed line
        deep = b'{"event_id": "deep", "context": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        return "d/a.jsonl", body + deep + b"\n{broken\n", "deep nesting"
    if kind == 4:  # invalid UTF-8 inside a string
        return "d/a.jsonl", body.replace(b'"chat"', b'"ch\xff\xfeat"', 1).replace(b'"en"', b'"\xc3"', 1), "bad utf-8"
    if kind == 5:  # a decompression bomb: a small gzip of far more newlines than the cap
        return "d/a.jsonl.gz", gzip.compress(b"\n" * (64 * 2**20), compresslevel=9), "gzip bomb"
    if kind == 6:  # a gzip flipped or truncated
        data = bytearray(gzip.compress(body))
        data[int(rng.integers(10, len(data)))] ^= 0xFF
        return "d/a.jsonl.gz", bytes(data[: int(rng.integers(len(data) // 2, len(data) + 1))]), "gzip damaged"
    if kind == 7:  # a line far longer than the cap
        return "d/a.jsonl", body + b'{"event_id": "' + b"a" * (256 * 2**10) + b'"}\n', "long line"
    from agent_retraining.datagate.reading import read_schema

    table = pa.Table.from_pylist(events, schema=read_schema(spec))
    if kind == 8:  # a column of the wrong type
        name = str(rng.choice(table.column_names))
        wrong = pa.array([{"x": 1}] * table.num_rows) if rng.random() < 0.5 else pa.array(["?"] * table.num_rows)
        return "d/a.parquet", _parquet(table.set_column(table.schema.get_field_index(name), name, wrong)), name
    if kind == 9:  # timestamps without an offset, as a naive timestamp column or as text
        if rng.random() < 0.5:
            naive = pa.array(np.zeros(table.num_rows, "datetime64[us]"))
        else:
            naive = pa.array(["2026-03-10T01:02:03"] * table.num_rows)
        return "d/a.parquet", _parquet(table.set_column(table.schema.get_field_index("ts"), "ts", naive)), "naive ts"
    if kind == 10:  # Parquet bytes flipped
        data = bytearray(_parquet(table))
        for at in rng.integers(0, len(data), size=int(rng.integers(1, 8))):
            data[at] = int(rng.integers(256))
        return "d/a.parquet", bytes(data), "parquet flipped"
    return "d/a.parquet", _parquet(table.drop([str(rng.choice(table.column_names))])), "column missing"


CHILD = textwrap.dedent("""
    import json, resource, sys
    sys.path[:0] = sys.argv[1:3]
    from datetime import date
    import pyarrow as pa, pyarrow.compute as pc
    from agent_retraining.datagate.reading import UnreadableObject, parse_log_object
    from agent_retraining.spec import AgentSpec
    spec = AgentSpec.model_validate_json(sys.stdin.readline())
    cases = json.loads(sys.stdin.readline())
    def vm_bytes():
        return int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + int(sys.argv[3]), resource.RLIM_INFINITY))
    results = []
    for key, body_hex, what in cases:
        body = bytes.fromhex(body_hex)
        try:
            parsed = parse_log_object(key, body, spec, date(2026, 3, 10))
        except UnreadableObject as exc:
            results.append({"what": what, "key": key, "fault": exc.fault})
            continue
        except BaseException as exc:
            results.append({"what": what, "crash": f"{type(exc).__name__}: {str(exc)[:300]}"})
            continue
        table = parsed.table
        table.validate(full=True)
        floats = [table.column(c) for c in ("propensity", "reward")]
        finite = all(pc.all(pc.is_finite(c)).as_py() in (True, None) for c in floats)
        nonblank = sum(1 for line in (body if not key.endswith(".parquet") else b"").split(b"\\n") if line.strip())
        results.append({"what": what, "rows": table.num_rows, "bad": len(parsed.bad_lines), "lines": parsed.lines,
                        "nonblank": nonblank, "finite": finite, "parquet": key.endswith(".parquet"),
                        "named": all(b["rule"] == "bad_lines" and b["key"] == key and b["line"] and b["message"]
                                     for b in parsed.bad_lines)})
    print(json.dumps({"results": results, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
""")


def test_every_hostile_object_gives_rows_or_named_faults_within_bounded_memory(support_bot):
    validation = {**support_bot.validation.model_dump(), **CAPS}
    spec = support_bot.model_copy(update={"validation": support_bot.validation.model_validate(validation)})
    rng = np.random.default_rng(22)
    cases = [_case(spec, rng) for _ in range(CASES)]
    stdin = spec.model_dump_json() + "\n" + json.dumps([[key, body.hex(), what] for key, body, what in cases]) + "\n"
    child = subprocess.run([sys.executable, "-c", CHILD, str(REPO / "include"), str(REPO), str(BUDGET)],
                           input=stdin, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    results = report["results"]
    crashes = [r for r in results if "crash" in r]
    assert not crashes, crashes[:5]
    for result in results:
        if "fault" in result:  # the object is refused, naming itself and why
            fault = result["fault"]
            assert fault["rule"] in ("unreadable_object", "object_too_large"), result
            assert fault["key"] == result["key"]
            assert fault["message"].startswith(result["key"] + ": ")
            continue
        assert result["finite"], result
        assert result["named"], result  # every bad line names its object, its line and why
        if not result["parquet"]:  # nothing lost: every non-blank line is a row or a named bad line
            assert result["rows"] + result["bad"] == result["nonblank"] == result["lines"], result
    bombs = [r for r in results if r["what"] == "gzip bomb"]
    assert bombs
    assert all(r.get("fault", {}).get("rule") == "object_too_large" for r in bombs), bombs[:2]
    by_kind = {}
    for result in results:
        by_kind.setdefault(result["what"], []).append(result)
    assert all(r["bad"] >= 1 for r in by_kind["long line"])  # the long line is a named bad line, the rest rows
    assert all(r["bad"] >= 2 for r in by_kind["deep nesting"])  # the deep line and the malformed one
    assert all(r["fault"]["field"] == "ts" for r in by_kind["naive ts"])
    kinds = {r["what"].split(" ")[0] for r in results}
    assert {"value", "bytes", "truncated", "deep", "bad", "gzip", "long", "naive", "parquet", "column"} <= kinds
