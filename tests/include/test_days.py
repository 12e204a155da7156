"""Validated days and the window verdict, against the real local S3 server.

A day is judged once on its own rows and reused while its objects and the
gate's day-level settings stay the same; what only the window can tell (event
ids repeated across days, shift against earlier days, how many days are usable)
is judged from what the days stored.
"""

import json
import os
from datetime import date, timedelta
from urllib.parse import unquote

import pytest

from agent_retraining.contract import day_prefix, run_prefix
from agent_retraining.datagate.rules import DataRejected
from agent_retraining.datagate.validate_day import judge_or_reuse
from agent_retraining.dev.simulate import World, day_events, write_day
from agent_retraining.storage import put_bytes, read_json, read_parquet, s3_client_from_env
from agent_retraining.window import Window
from tests.conftest import spec_variant, validate_window
from tests.e2e.s3_faults import Fault, FaultyS3Proxy

LAST = date(2026, 4, 7)
ROWS = 700


def _agent(support_bot, agent_id: str, **validation):
    return spec_variant(
        support_bot, agent_id=agent_id, validation={**support_bot.validation.model_dump(), **validation}
    )


def _write_week(s3, buckets, spec, change_last_day=None) -> Window:
    """Seven clean days ending LAST; `change_last_day` may alter the newest day's events before they are written."""
    world, window = World.for_spec(spec, 11), Window.ending(LAST, spec)
    for day in window.days:
        events = day_events(world, day, ROWS, 11)
        write_day(s3, buckets.logs, spec, day, change_last_day(events) if change_last_day and day == LAST else events)
    return window


def _run_dir(spec, name="test"):
    return run_prefix(spec.agent_id, LAST, name)


def test_an_unchanged_day_is_reused_without_reading_its_logs(support_bot, s3, buckets):
    spec = _agent(support_bot, "reuse-bot")
    _write_week(s3, buckets, spec)
    first = judge_or_reuse(s3, buckets, spec, LAST)

    proxy = FaultyS3Proxy(os.environ["S3_ENDPOINT_URL"], Fault(path_part="nothing", failures=0))
    with proxy as url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("S3_ENDPOINT_URL", url)
        again = judge_or_reuse(s3_client_from_env(), buckets, spec, LAST)

    assert not first["reused"]
    assert again["reused"]
    assert again["verdict_key"] == first["verdict_key"]
    to_logs = [(method, path) for method, path in proxy.requests if path.startswith(f"/{buckets.logs}")]
    assert to_logs
    assert all(method == "GET" and "list-type=2" in path for method, path in to_logs)  # LISTs only
    assert ("GET", f"/{buckets.artifacts}/{first['verdict_key']}") in [(m, unquote(p)) for m, p in proxy.requests]


def test_a_rewritten_or_late_object_makes_the_day_judged_again(support_bot, s3, buckets):
    spec = _agent(support_bot, "late-bot")
    _write_week(s3, buckets, spec)
    first = judge_or_reuse(s3, buckets, spec, LAST)
    late = day_events(World.for_spec(spec, 12), LAST, 100, 12)
    put_bytes(s3, buckets.logs, day_prefix(spec.agent_id, LAST) + "late.jsonl", "".join(
        json.dumps(e) + "\n" for e in late).encode())  # fmt: skip

    with_late_file = judge_or_reuse(s3, buckets, spec, LAST)

    assert not with_late_file["reused"]
    assert with_late_file["verdict_key"] != first["verdict_key"]
    assert with_late_file["rows"] == first["rows"] + 100
    late[0]["propensity"] = 0.0  # the late file is rewritten, now with a broken row
    put_bytes(s3, buckets.logs, day_prefix(spec.agent_id, LAST) + "late.jsonl", "".join(
        json.dumps(e) + "\n" for e in late).encode())  # fmt: skip

    rewritten = judge_or_reuse(s3, buckets, spec, LAST)

    assert not rewritten["reused"]
    assert not rewritten["passed"]
    verdict = read_json(s3, buckets.artifacts, rewritten["verdict_key"])
    assert any("late.jsonl line 1 value 0.0" in failure for failure in verdict["failures"])


def test_changing_the_day_level_settings_judges_every_day_again(support_bot, s3, buckets):
    spec = _agent(support_bot, "settings-bot")
    window = _write_week(s3, buckets, spec)
    before = {day: judge_or_reuse(s3, buckets, spec, day) for day in window.days}
    stricter = _agent(support_bot, "settings-bot", min_rows_per_day=ROWS + 1)
    window_level_only = _agent(
        support_bot, "settings-bot", max_drift_psi=0.05, reward_rate={"max_change": 0.1, "scale": "absolute"}
    )

    after = {day: judge_or_reuse(s3, buckets, stricter, day) for day in window.days}
    unaffected = {day: judge_or_reuse(s3, buckets, window_level_only, day) for day in window.days}

    assert all(not summary["reused"] and not summary["passed"] for summary in after.values())
    assert {d: s["verdict_key"] for d, s in after.items()}.keys() == before.keys()
    assert all(after[day]["verdict_key"] != before[day]["verdict_key"] for day in window.days)
    # Drift and reward-rate limits are applied afresh by every run from the stored summaries: no day is re-read.
    assert all(summary["reused"] for summary in unaffected.values())


def test_a_new_day_with_15_percent_of_a_feature_missing_is_refused_however_clean_the_week(support_bot, s3, buckets):
    """`language` may be missing on 5% of rows. Judged over the whole week, a new day with 15% missing averages to
    about 2% and passes; judged on its own, it is refused."""
    spec = _agent(support_bot, "missing-bot")

    def drop_language(events):
        for event in events[: int(0.15 * len(events))]:
            event["context"]["language"] = None
        return events

    window = _write_week(s3, buckets, spec, drop_language)
    with pytest.raises(DataRejected, match=r"the run's own day\): \[context_non_null:ctx_language\]"):
        validate_window(s3, buckets, spec, window, _run_dir(spec))

    validation = read_json(s3, buckets.artifacts, _run_dir(spec) + "validation.json")
    refused = [c for c in validation["checks"] if not c["success"] and c["tier"] == "block"]
    assert [(c["day"], c["rule"]) for c in refused] == [(LAST.isoformat(), "context_non_null:ctx_language")]
    missing = {d["day"]: read_parquet(s3, buckets.artifacts, d["rows_key"]).column("ctx_language").null_count
               for d in validation["days"]}  # fmt: skip
    assert f"{missing[LAST.isoformat()]} of {ROWS} rows fail" in refused[0]["message"]
    assert missing[LAST.isoformat()] / ROWS > 0.15
    assert sum(missing.values()) / (7 * ROWS) < spec.context["language"].max_null_fraction  # what a week would hide


def test_event_ids_repeated_from_an_earlier_day_refuse_the_day_naming_both(support_bot, s3, buckets):
    """An agent that re-sends yesterday's events (a retry after a lost acknowledgement) under today's date."""
    spec = _agent(support_bot, "replay-bot")
    yesterday = day_events(World.for_spec(spec, 11), LAST - timedelta(days=1), ROWS, 11)

    def resend_yesterday(events):
        replayed = [{**e, "ts": events[i]["ts"]} for i, e in enumerate(yesterday[:40])]
        return events + replayed

    window = _write_week(s3, buckets, spec, resend_yesterday)
    with pytest.raises(DataRejected, match=r"unique_event_id:window"):
        validate_window(s3, buckets, spec, window, _run_dir(spec))

    validation = read_json(s3, buckets.artifacts, _run_dir(spec) + "validation.json")
    (check,) = [c for c in validation["checks"] if c["rule"] == "unique_event_id:window" and not c["success"]]
    assert check["day"] == LAST.isoformat()
    assert f"40 of {ROWS + 40} rows of {LAST}" in check["message"]
    assert check["examples"][0]["value"] == f"an event id of {LAST - timedelta(days=1)}"
    assert check["examples"][0]["key"].startswith(day_prefix(spec.agent_id, LAST))
    assert all(c["success"] for c in validation["checks"] if c["rule"] == "unique_event_id:window" and c is not check)


def _week_with_a_broken_day(s3, buckets, spec) -> Window:
    window = _write_week(s3, buckets, spec)
    broken = LAST - timedelta(days=3)
    put_bytes(s3, buckets.logs, day_prefix(spec.agent_id, broken) + "part-00000.jsonl.gz", b"not gzip at all")
    return window


def test_a_refused_earlier_day_is_left_out_and_named(support_bot, s3, buckets):
    spec = _agent(support_bot, "exclude-bot")
    window = _week_with_a_broken_day(s3, buckets, spec)

    validation = validate_window(s3, buckets, spec, window, _run_dir(spec))

    assert validation["passed"]
    broken = (LAST - timedelta(days=3)).isoformat()
    assert [d["day"] for d in validation["left_out"]] == [broken]
    assert "part-00000.jsonl.gz: truncated or corrupt gzip" in validation["left_out"][0]["why"][0]
    assert broken not in validation["usable_days"]
    assert len(validation["usable_days"]) == 6


def test_a_refused_earlier_day_blocks_when_the_spec_says_so(support_bot, s3, buckets):
    spec = _agent(support_bot, "block-bot", refused_past_days="block")
    window = _week_with_a_broken_day(s3, buckets, spec)
    with pytest.raises(DataRejected, match=r"an earlier day; the spec's refused_past_days is block\): "
                                           r"\[unreadable_object\]"):  # fmt: skip
        validate_window(s3, buckets, spec, window, _run_dir(spec))


def test_fewer_usable_days_than_the_spec_asks_for_is_a_named_refusal(support_bot, s3, buckets):
    spec = _agent(support_bot, "few-days-bot", min_usable_days=7)
    window = _week_with_a_broken_day(s3, buckets, spec)
    with pytest.raises(DataRejected, match=r"too few usable days: 6 of 7 \(5 to train on\), the spec asks for 7; "
                                           r"left out: 2026-04-04: \[unreadable_object\]"):  # fmt: skip
        validate_window(s3, buckets, spec, window, _run_dir(spec))
    assert not read_json(s3, buckets.artifacts, _run_dir(spec) + "validation.json")["passed"]


def test_a_missing_earlier_day_is_left_out_as_incomplete(support_bot, s3, buckets):
    spec = _agent(support_bot, "gap-bot")
    world, window = World.for_spec(spec, 11), Window.ending(LAST, spec)
    for day in window.days[:2] + window.days[3:]:
        write_day(s3, buckets.logs, spec, day, day_events(world, day, ROWS, 11))

    validation = validate_window(s3, buckets, spec, window, _run_dir(spec))

    (left_out,) = validation["left_out"]
    assert left_out["day"] == window.days[2].isoformat()
    assert f"s3://{buckets.logs}/gap-bot/dt={window.days[2]}/_SUCCESS is missing" in left_out["why"][0]
