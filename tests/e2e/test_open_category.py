"""An open category in real nightly runs on the local S3 server: values the spec never listed (a new product id)
arrive, the encoding does not change, so the next night is judged against the live model instead of without it;
and the data gate's drift sees the values move between buckets."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from agent_retraining.contract import run_prefix
from agent_retraining.dev.simulate import World, day_table, write_day
from agent_retraining.manifest import read_manifest
from agent_retraining.models.features import encoding_id
from agent_retraining.records import Decision, WindowVerdict, read_record
from tests.conftest import spec_variant

START = date(2026, 8, 1)
EVENTS = 1500


@pytest.fixture(scope="module")
def open_spec(support_bot):
    context = {**{n: f.model_dump() for n, f in support_bot.context.items()},
               "product": {"type": "open_category", "buckets": 32, "max_null_fraction": 0.1}}  # fmt: skip
    training = {**support_bot.training.model_dump(), "window_days": 3, "holdout_days": 1, "lightgbm_search": []}
    return spec_variant(support_bot, agent_id="open-bot", context=context, training=training,
                        candidates=["logistic_regression"])  # fmt: skip


def test_new_values_of_an_open_category_keep_the_champion_and_move_its_drift(install, s3, buckets, open_spec):
    from agent_retraining.dev.dag_runner import run_night

    spec, world = open_spec, World.for_spec(open_spec, 0)
    days = [START + timedelta(days=n) for n in range(4)]
    for day in days[:3]:
        write_day(s3, buckets.logs, spec, day, day_table(world, day, EVENTS, 1))
    install(spec)
    dag_run, first = run_night(spec, days[2])
    assert dag_run.state == "success", first
    assert first["outcome"] == "deployed", first["decision"]["reason"]
    live, _ = read_manifest(s3, buckets, spec.agent_id)
    assert live["encoding"]["context"][-1] == {"name": "product", "type": "open_category", "buckets": 32}

    # The fourth day: most products are ones nobody listed anywhere.
    newest = day_table(world, days[3], EVENTS, 2)
    products = newest.column("context").combine_chunks().field("product")
    fresh = pc.if_else(pc.is_valid(products), pc.binary_join_element_wise("launched-", products, ""), products)
    context = newest.column("context").combine_chunks()
    fields = [context.field(n) if n != "product" else fresh for n in spec.context]
    newest = newest.set_column(newest.schema.get_field_index("context"), "context",
                               pa.StructArray.from_arrays(fields, names=list(spec.context)))  # fmt: skip
    write_day(s3, buckets.logs, spec, days[3], newest)
    dag_run, second = run_night(spec, days[3])
    assert dag_run.state == "success", second
    run_dir = run_prefix(spec.agent_id, days[3], dag_run.run_id)
    decision = read_record(s3, buckets.artifacts, run_dir + "decision.json", Decision)
    assert decision["champion"]["version"] == live["version"], decision["champion"]["note"]
    assert encoding_id(spec) == live["encoding_id"]  # new values changed nothing in the encoding
    verdict = read_record(s3, buckets.artifacts, run_dir + "validation.json", WindowVerdict)
    drift = next(c for c in verdict["checks"] if c["rule"] == "drift:ctx_product" and c["day"] == days[3].isoformat())
    assert drift["observed"] > 0.2, drift  # the day's values sit in other buckets than the week before
