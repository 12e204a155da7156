"""An LLM router's logs (a message and its embedding per decision) in real nightly runs on the local S3 server:
the first night deploys a model whose manifest tells any client how to featurize both; a day on which users write
about one thing only is used, with its drift warned on both features; a day with one embedding of the wrong
length, or (in Parquet) with a NaN in one, is refused by name, and the live model stays the one before it."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agent_retraining.contract import day_prefix, quarantine_prefix, run_prefix, success_key
from agent_retraining.dev.simulate import World, day_events, day_table, write_day
from agent_retraining.manifest import read_manifest
from agent_retraining.records import WindowVerdict, read_record
from agent_retraining.serving.client import AgentModelClient
from agent_retraining.storage import get_bytes, put_bytes
from tests.conftest import spec_variant

START = date(2026, 10, 1)
EVENTS = 1500


def _checks(s3, buckets, spec, day, dag_run) -> dict[str, dict]:
    verdict = read_record(s3, buckets.artifacts, run_prefix(spec.agent_id, day, dag_run.run_id) + "validation.json",
                          WindowVerdict)  # fmt: skip
    return {c["rule"]: c for c in verdict["checks"] if c.get("day") == day.isoformat()}


@pytest.fixture(scope="module")
def router_spec():
    from agent_retraining.spec import load_agent

    router = load_agent("llm-router")
    training = {**router.training.model_dump(), "window_days": 3, "holdout_days": 1, "lightgbm_search": []}
    return spec_variant(router, agent_id="router-e2e", training=training, candidates=["logistic_regression"])


def test_a_router_deploys_warns_on_drift_and_refuses_a_wrong_embedding(install, s3, buckets, router_spec):
    from agent_retraining.dev.dag_runner import run_night

    spec, world = router_spec, World.for_spec(router_spec, 0)
    days = [START + timedelta(days=n) for n in range(5)]
    for day in days[:3]:
        write_day(s3, buckets.logs, spec, day, day_table(world, day, EVENTS, 1))
    install(spec)
    dag_run, first = run_night(spec, days[2])
    assert first["outcome"] == "deployed", first["decision"]["reason"]
    live, _ = read_manifest(s3, buckets, spec.agent_id)
    described = {f["name"]: f for f in live["encoding"]["context"]}
    assert described["message"] == {"name": "message", "type": "text", "buckets": 256, "max_bytes": 1024,
                                    "cross_dims": 32}  # fmt: skip
    assert described["message_embedding"] == {"name": "message_embedding", "type": "embedding", "dim": 32,
                                              "cross_dims": 32}  # fmt: skip
    client = AgentModelClient(spec.agent_id, s3, buckets.models)
    client.poll()
    contexts = [e["context"] for e in day_events(world, days[3], 50, 9)]
    propensities, versions = client.serve(contexts, [f"s-{n}" for n in range(50)])
    assert set(versions) == {live["version"]}
    assert np.allclose(propensities.sum(axis=1), 1.0)

    # Day 4: every user writes about refunds. The day is used; both features' drift warns.
    refunds_only = np.eye(len(world.intent_mix))[0]
    write_day(s3, buckets.logs, spec, days[3], day_table(replace(world, intent_mix=refunds_only), days[3], EVENTS, 2))
    dag_run, second = run_night(spec, days[3])
    assert dag_run.state == "success", second
    assert second["outcome"] != "data rejected", second
    checks = _checks(s3, buckets, spec, days[3], dag_run)
    for column in ("ctx_message", "ctx_message_embedding"):
        drift = checks[f"drift:{column}"]
        assert not drift["success"], drift
        assert (drift["tier"], drift["observed"] > 0.2) == ("warn", True), drift
    assert checks["embedding_valid:ctx_message_embedding"]["success"]
    live, _ = read_manifest(s3, buckets, spec.agent_id)

    # Day 5: one event logs a 31-number embedding (an encoder changed under the agent): the day is refused.
    events = day_events(world, days[4], EVENTS, 3)
    events[40]["context"]["message_embedding"] = events[40]["context"]["message_embedding"][:31]
    keys = write_day(s3, buckets.logs, spec, days[4], events)
    dag_run, third = run_night(spec, days[4])
    assert third["outcome"] == "data rejected", third
    valid = _checks(s3, buckets, spec, days[4], dag_run)["embedding_valid:ctx_message_embedding"]
    assert (valid["success"], valid["tier"]) == (False, "block"), valid
    assert valid["examples"] == [{"key": keys[0], "line": 41, "value": "31 values"}]
    assert read_manifest(s3, buckets, spec.agent_id)[0]["version"] == live["version"]
    quarantined, _ = get_bytes(s3, buckets.artifacts, quarantine_prefix(spec.agent_id, days[4]) + "rejected-rows.jsonl")
    assert [json.loads(line) for line in quarantined.splitlines()] == [
        {"rule": "embedding_valid:ctx_message_embedding", "key": keys[0], "line": 41, "value": "31 values"}
    ]

    # Day 6, logged as Parquet, which can carry a NaN: one vector holds one, and the day is refused too.
    day = days[4] + timedelta(days=1)
    table = day_table(world, day, EVENTS, 4)
    context = table.column("context").combine_chunks()
    vectors = context.field("message_embedding").to_pylist()
    vectors[7][3] = float("nan")
    fields = [pa.array(vectors, pa.list_(pa.float32())) if n == "message_embedding" else context.field(n)
              for n in spec.context]  # fmt: skip
    table = table.set_column(table.schema.get_field_index("context"), "context",
                             pa.StructArray.from_arrays(fields, names=list(spec.context)))  # fmt: skip
    body = io.BytesIO()
    pq.write_table(table, body)
    key = f"{day_prefix(spec.agent_id, day)}part-00000.parquet"
    put_bytes(s3, buckets.logs, key, body.getvalue())
    put_bytes(s3, buckets.logs, success_key(spec.agent_id, day), b"")
    dag_run, fourth = run_night(spec, day)
    assert fourth["outcome"] == "data rejected", fourth
    valid = _checks(s3, buckets, spec, day, dag_run)["embedding_valid:ctx_message_embedding"]
    assert valid["examples"] == [{"key": key, "line": 8, "value": "32 values, not all finite"}], valid
    assert read_manifest(s3, buckets, spec.agent_id)[0]["version"] == live["version"]
