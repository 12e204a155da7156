"""A writer in another language follows the log contract: days of the simulator's events, written to the local S3
server by the Node.js client's writer (clients/node/bin/write-day.js), pass the real data gate; and a retried
upload, which a writer must expect to happen, leaves the day as it was instead of repeating its event ids."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from agent_retraining.contract import SUCCESS_MARKER, day_prefix, run_prefix
from agent_retraining.datagate.rules import DataRejected
from agent_retraining.datagate.validate_day import judge_or_reuse
from agent_retraining.dev.simulate import World, day_events
from agent_retraining.storage import get_bytes, list_keys
from agent_retraining.window import Window
from tests.conftest import spec_variant, validate_window

WRITE_DAY = Path(__file__).resolve().parents[2] / "clients" / "node" / "bin" / "write-day.js"
LAST = date(2026, 6, 2)
ROWS = 700
EVENTS_PER_FILE = 300  # a day in several objects, as a writer that rotates its files writes it


def _agent(support_bot, agent_id: str):
    """The example spec with a two-day window: one training day and the held-out day, both written by Node."""
    training = {**support_bot.training.model_dump(), "window_days": 2}
    return spec_variant(support_bot, agent_id=agent_id, training=training)


def _write_with_node(buckets, spec, events: list[dict], writer_id: str, first_sequence: int = 0) -> list[str]:
    node = shutil.which("node")
    assert node, "node is not on PATH: the Node.js writer needs Node 20 or later"
    assert (WRITE_DAY.parents[1] / "node_modules").is_dir(), "clients/node has no node_modules: run `make node-client`"
    request = {
        "endpoint": os.environ["S3_ENDPOINT_URL"],
        "region": os.environ["AWS_DEFAULT_REGION"],
        "accessKeyId": os.environ["AWS_ACCESS_KEY_ID"],
        "secretAccessKey": os.environ["AWS_SECRET_ACCESS_KEY"],
        "bucket": buckets.logs,
        "agentId": spec.agent_id,
        "writerId": writer_id,
        "firstSequence": first_sequence,
        "maxEventsPerFile": EVENTS_PER_FILE,
        "events": events,
    }
    result = subprocess.run([node, str(WRITE_DAY)], input=json.dumps(request), capture_output=True, text=True,
                            timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, f"write-day.js failed:\n{result.stderr}"
    return json.loads(result.stdout)["keys"]


def _window_events(spec, seed: int) -> tuple[Window, dict[date, list[dict]]]:
    world, window = World.for_spec(spec, seed), Window.ending(LAST, spec)
    return window, {day: day_events(world, day, ROWS, seed) for day in window.days}


def _event_ids(s3, buckets, spec, day: date) -> list[str]:
    ids = []
    for obj in list_keys(s3, buckets.logs, day_prefix(spec.agent_id, day)):
        if not obj["key"].endswith(SUCCESS_MARKER):
            ids += [json.loads(line)["event_id"] for line in get_bytes(s3, buckets.logs, obj["key"])[0].splitlines()]
    return ids


def test_days_written_by_the_node_writer_pass_the_data_gate(support_bot, s3, buckets):
    spec = _agent(support_bot, "node-writer-bot")
    window, events = _window_events(spec, 21)

    keys = _write_with_node(buckets, spec, [e for day in window.days for e in events[day]], "replica-a")

    for day in window.days:  # 700 events in three objects, named by writer and sequence, then the day's marker
        prefix = day_prefix(spec.agent_id, day)
        assert [k for k in keys if k.startswith(prefix)][-1] == prefix + SUCCESS_MARKER
        assert len([k for k in keys if k.startswith(prefix + "replica-a-")]) == 3
    verdict = validate_window(s3, buckets, spec, window, run_prefix(spec.agent_id, LAST, "node-writer"))
    assert verdict["passed"], verdict["failures"]
    assert verdict["usable_days"] == [day.isoformat() for day in window.days]
    assert verdict["rows"] == 2 * ROWS
    assert not [c for c in verdict["checks"] if not c["success"] and c["tier"] != "warn"]


def test_a_retried_upload_overwrites_and_never_repeats_event_ids(support_bot, s3, buckets):
    spec = _agent(support_bot, "node-retry-bot")
    window, events = _window_events(spec, 22)
    upload = [e for day in window.days for e in events[day]]
    first = _write_with_node(buckets, spec, upload, "replica-a")
    before = list_keys(s3, buckets.logs, f"{spec.agent_id}/")

    again = _write_with_node(buckets, spec, upload, "replica-a")  # the same upload again: same writer, same sequence

    after = list_keys(s3, buckets.logs, f"{spec.agent_id}/")
    assert again == first
    assert [o["key"] for o in after] == [o["key"] for o in before]  # overwritten, nothing added
    for day in window.days:
        assert sorted(_event_ids(s3, buckets, spec, day)) == sorted(e["event_id"] for e in events[day])
    verdict = validate_window(s3, buckets, spec, window, run_prefix(spec.agent_id, LAST, "node-retry"))
    assert verdict["passed"], verdict["failures"]
    assert verdict["rows"] == 2 * ROWS

    # What the naming prevents: the same events under new names (a writer that names each try anew) refuse the day.
    _write_with_node(buckets, spec, events[LAST], "replica-a", first_sequence=100)
    assert not judge_or_reuse(s3, buckets, spec, LAST)["passed"]
    with pytest.raises(DataRejected, match="unique_event_id"):
        validate_window(s3, buckets, spec, window, run_prefix(spec.agent_id, LAST, "node-retry-renamed"))
