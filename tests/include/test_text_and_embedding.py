"""Text and embedding features: the featurizer's definition, train/serve parity, the reader's and the gate's rules,
and drift, on the llm-router spec and small variants of it (no server needed)."""

from __future__ import annotations

import gzip
import io
import json
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agent_retraining.datagate import drift
from agent_retraining.datagate.reading import parse_log_object
from agent_retraining.datagate.wide_rules import wide_feature_checks
from agent_retraining.dev.simulate import World, day_events, day_table, sample_contexts, seeded_rng, to_jsonl
from agent_retraining.feature_hashing import text_counts, trigrams, unit_scaled
from agent_retraining.models.encoding import (
    action_scores,
    columns,
    context_block,
    context_columns,
    context_table,
    crossed_columns,
    encoding_of,
    with_actions,
)
from agent_retraining.models.features import encode_context
from agent_retraining.spec import SpecError, load_agent, parse_spec
from tests.conftest import spec_variant

DAY = date(2026, 9, 1)


@pytest.fixture(scope="module")
def router():
    return load_agent("llm-router")


def _read(spec, events: list[dict] | pa.Table, key: str = "logs/part-0.jsonl"):
    return parse_log_object(key, to_jsonl(events), spec, DAY)


def random_texts(rng: np.random.Generator, count: int) -> list[str]:
    """Texts a hostile or merely international user sends: any code point but lone surrogates, control
    characters, emoji, empty texts and texts far above max_bytes."""
    alphabet = [chr(c) for c in [*range(0, 128), *range(0xA0, 0x800, 7), *range(0x3040, 0x30FF, 3),
                                 *range(0x1F600, 0x1F650, 5), 0x10FFFF]]  # fmt: skip
    texts = ["", " ", "\x00", "A" * 5000, "€" * 400]
    while len(texts) < count:
        length = int(rng.choice([1, 5, 40, 300, 3000]))
        texts.append("".join(rng.choice(alphabet, size=length)))
    return texts


def test_a_text_is_the_letter_trigrams_of_its_ascii_lowered_words():
    rows, hashes = trigrams(pa.array(["Hi,  THERE!\n", "", None]), 64)
    assert rows.tolist() == [0] * 8  # " hi there ": 10 bytes, 8 windows; empty and null texts have none
    assert np.array_equal(hashes, trigrams(pa.array(["hi there"]), 64)[1])  # case, punctuation, spaces: gone
    # Only ASCII is lowered: the same word in another case of a non-ASCII letter is other bytes.
    assert not np.array_equal(trigrams(pa.array(["ÉTÉ"]), 64)[1], trigrams(pa.array(["été"]), 64)[1])
    # max_bytes counts UTF-8 bytes: 21 whole euro signs and one byte of the 22nd.
    assert len(trigrams(pa.array(["€" * 30]), 64)[0]) == 64 + 2 - 2


def test_text_counts_are_unit_length_and_their_sketch_exact():
    counts = text_counts(pa.array(["refund for order 123", "refund for order 124", ""]), 1024, 64)
    scaled, _ = unit_scaled(counts, counts[:, :4])
    assert np.allclose(np.linalg.norm(scaled[:2], axis=1), 1.0)
    assert not scaled[2].any()
    assert (scaled[0] * scaled[1]).sum() > 0.8  # two messages that differ in one digit share most trigrams


def test_the_crossed_part_holds_no_wide_column(router):
    encoding = encoding_of(router)
    crossed, context = crossed_columns(encoding), context_columns(encoding)
    assert context[: len(crossed)] == crossed
    wide = context[len(crossed) :]
    assert len(wide) == 256 + 32
    assert wide[0] == "message#0"
    assert wide[-1] == "message_embedding[31]"
    assert not any(c.startswith("message#") or "[" in c for c in crossed)
    features = 3 + 1 + 1  # the handlers' family (one-hot), retrieval, cost
    assert len(columns(encoding)) == len(context) + 4 + features + (4 + features) * len(crossed)


def test_an_encoding_without_text_keeps_its_columns(support_bot):
    """Specs from before text features encode exactly as they did, so their live models stay servable."""
    encoding = encoding_of(support_bot)
    base = context_columns(encoding)
    actions = [f"action={a}" for a in support_bot.actions]
    assert columns(encoding) == base + actions + [f"{c}*{a}" for a in actions for c in base]


def test_features_training_computes_equal_those_the_client_computes(router):
    """Train/serve parity: contexts logged (JSONL through the log reader) and the same contexts handed to the
    client give the same matrix, bit for bit, for random Unicode, empty and very long texts and any embedding."""
    rng = np.random.default_rng(3)
    events = day_events(World.for_spec(router, 0), DAY, 120, 1)
    texts = random_texts(rng, len(events))
    for number, (event, text) in enumerate(zip(events, texts, strict=True)):
        event["context"]["message"] = text
        if number % 7 == 0:
            event["context"]["message_embedding"] = None
        elif number % 3 == 0:
            event["context"]["message_embedding"] = (rng.normal(size=32) * 10.0 ** rng.integers(-5, 5)).tolist()
    parsed = _read(router, events)
    assert not parsed.bad_lines
    assert parsed.table.num_rows == len(events)
    contexts = [event["context"] for event in events]
    encoding = encoding_of(router)
    served = context_block(encoding, context_table(encoding, contexts))
    assert np.array_equal(encode_context(router, parsed.table), served)


def test_an_embedding_of_the_wrong_length_is_refused_when_served(router):
    encoding = encoding_of(router)
    context = {"message": "hi", "message_embedding": [0.1] * 31}
    with pytest.raises(ValueError, match="'message_embedding' must hold 32 numbers, got 31"):
        context_table(encoding, [context])
    with pytest.raises(ValueError, match="'message_embedding' must be a list of finite numbers, item 1"):
        context_table(encoding, [{"message_embedding": [0.1, True] + [0.0] * 30}])


def test_the_reader_names_a_bad_vector_or_text_by_line_and_field(router):
    events = day_events(World.for_spec(router, 0), DAY, 6, 1)
    events[1]["context"]["message_embedding"][3] = "0.5"
    events[2]["context"]["message_embedding"] = [0.1, None] + [0.0] * 30
    events[3]["context"]["message"] = ["not", "text"]
    events[5]["context"]["message"] = "a megabyte message " * 60_000  # above max_line_bytes (1 MiB)
    lines = to_jsonl(events).split(b"\n")
    lines[4] = lines[4].replace(b'"message_embedding":[', b'"message_embedding":[1e400,', 1)
    parsed = parse_log_object("logs/part-0.jsonl", b"\n".join(lines), router, DAY)
    faults = {fault["line"]: (fault["field"], fault["message"]) for fault in parsed.bad_lines}
    assert faults[2] == ("context.message_embedding", "must be a list of finite numbers, item 3 is '0.5'")
    assert faults[3] == ("context.message_embedding", "must be a list of finite numbers, item 1 is None")
    assert faults[4][0] == "context.message"
    assert "must be text" in faults[4][1]
    assert faults[5] == ("context.message_embedding", "must be a list of finite numbers, item 0 is inf")
    assert faults[6][0] is None
    assert "above max_line_bytes 1,048,576" in faults[6][1]
    assert parsed.table.num_rows == 1


def test_the_gate_refuses_vectors_of_another_length_or_not_finite_and_names_the_rows(router):
    table = day_table(World.for_spec(router, 0), DAY, 400, 1)
    events = table.to_pylist()
    events[5]["context"]["message_embedding"] = events[5]["context"]["message_embedding"][:16]  # an old encoder
    rows = _read(router, events).table
    checks = {c["rule"]: c for c in wide_feature_checks(router, rows)}
    valid = checks["embedding_valid:ctx_message_embedding"]
    assert not valid["success"]
    assert valid["tier"] == "block"
    assert valid["observed"] == 1
    assert valid["examples"] == [{"key": "logs/part-0.jsonl", "line": 6, "value": "16 values"}]
    assert checks["embedding_norm:ctx_message_embedding"]["success"]  # the short vector is judged by the other rule
    # Parquet can carry NaN: the same rule refuses it.
    parquet = io.BytesIO()
    context = table.column("context").combine_chunks()
    vectors = context.field("message_embedding").to_pylist()
    vectors[7][0] = float("nan")
    fields = [context.field(n) if n != "message_embedding" else pa.array(vectors, pa.list_(pa.float32()))
              for n in router.context]  # fmt: skip
    table = table.set_column(table.schema.get_field_index("context"), "context",
                             pa.StructArray.from_arrays(fields, names=list(router.context)))  # fmt: skip
    pq.write_table(table, parquet)
    rows = parse_log_object("logs/part-1.parquet", parquet.getvalue(), router, DAY).table
    valid = next(c for c in wide_feature_checks(router, rows) if c["rule"].startswith("embedding_valid"))
    assert (valid["success"], valid["examples"][0]["line"]) == (False, 8), valid


def test_the_gate_holds_norms_to_the_spec_and_warns_on_cut_texts(router):
    events = day_events(World.for_spec(router, 0), DAY, 200, 1)
    for event in events[:3]:
        event["context"]["message_embedding"] = [2.0 * v for v in event["context"]["message_embedding"]]
    for event in events[:30]:
        event["context"]["message"] = "x" * 1500
    checks = {c["rule"]: c for c in wide_feature_checks(router, _read(router, events).table)}
    norm = checks["embedding_norm:ctx_message_embedding"]
    assert not norm["success"]
    assert norm["tier"] == "block"
    assert norm["observed"] == pytest.approx(3 / 200)
    assert norm["examples"][0]["value"] == "norm 2"
    cut = checks["text_length:ctx_message"]
    assert not cut["success"]
    assert cut["tier"] == "warn"
    assert "30 of 200 rows longer than max_bytes 1024" in cut["message"]


def _histograms(spec, world, rows, seed):
    values, _ = sample_contexts(world, rows, seeded_rng("drift", seed))
    table = pa.table({f"ctx_{name}": column for name, column in values.items()})
    return {"day": f"2026-09-0{seed}", "rows": rows, "histograms": drift.histograms(spec, table)}


def test_drift_of_what_users_write_shows_in_the_text_and_the_embedding(router):
    world = World.for_spec(router, 0)
    earlier = [_histograms(router, world, 2000, seed) for seed in (1, 2, 3)]
    same = {c["rule"]: c for c in drift.drift_checks(router, _histograms(router, world, 2000, 4), earlier)}
    assert (same["drift:ctx_message"]["success"], same["drift:ctx_message_embedding"]["success"]) == (True, True)
    refunds_only = np.zeros(len(world.intent_mix))
    refunds_only[0] = 1.0
    moved = World(**{**world.__dict__, "intent_mix": refunds_only})
    shifted = {c["rule"]: c for c in drift.drift_checks(router, _histograms(router, moved, 2000, 5), earlier)}
    for rule in ("drift:ctx_message", "drift:ctx_message_embedding"):
        assert (shifted[rule]["success"], shifted[rule]["tier"]) == (False, "warn"), shifted[rule]
    assert "direction_0" in shifted["drift:ctx_message"]["message"]
    assert shifted["drift:ctx_customer_tier"]["success"]  # nothing else moved


def test_specs_refuse_impossible_text_and_embedding_settings(router):
    raw = router.model_dump()
    raw["context"]["message_embedding"] |= {"min_norm": 1.2, "max_norm": 1.1}
    with pytest.raises(SpecError, match="min_norm"):
        parse_spec(json.dumps(raw), "router.yaml")
    with pytest.raises(ValueError, match="embedding_norm applies to embedding features, 'channel' is category"):
        spec_variant(router, validation={"tiers": {"embedding_norm:channel": "warn"}})
    with pytest.raises(ValueError, match="slices.features: 'message' must be a category or bool"):
        spec_variant(router, gate={**router.gate.model_dump(), "slices": {"features": ["message"]}})


@pytest.mark.parametrize("kept", ["message", "message_embedding"])
def test_a_linear_model_picks_the_handler_from_the_words_alone(router, kept):
    """The crossed sketch carries what the truth depends on (the intent): a logistic regression on the encoded
    rows, with only the message (or only its embedding) beside the tabular features, picks handlers the truth
    values clearly above what the same model does without either."""
    from sklearn.linear_model import LogisticRegression

    world = World.for_spec(router, 0)
    values, signals = sample_contexts(world, 8000, seeded_rng("learn", 1))
    context = context_block(encoding_of(router), pa.table({f"ctx_{n}": c for n, c in values.items()}))
    truth = world.reward_probability(signals)
    rng = np.random.default_rng(2)
    actions = rng.integers(0, len(router.actions), size=len(context))
    rewards = rng.random(len(context)) < truth[np.arange(len(context)), actions]
    names = context_columns(encoding_of(router))
    value = {}
    for label, blinded in (("with", "message_embedding" if kept == "message" else "message#"), ("without", "message")):
        seen = context * np.array([not name.startswith(blinded) for name in names], dtype=np.float32)
        encoding = encoding_of(router)
        model = LogisticRegression(C=10.0, max_iter=2000).fit(with_actions(encoding, seen[:6000], actions[:6000]),
                                                              rewards[:6000])  # fmt: skip
        scores = action_scores(encoding, seen[6000:], [_Probability(model)])[0]
        value[label] = truth[6000:][np.arange(2000), scores.argmax(axis=1)].mean()
    assert value["with"] > value["without"] + 0.025, value


class _Probability:
    def __init__(self, model):
        self.model = model

    def predict(self, matrix):
        return self.model.predict_proba(matrix)[:, 1]


def test_a_day_of_router_logs_round_trips_through_gzip_jsonl(router):
    table = day_table(World.for_spec(router, 0), DAY, 300, 2)
    parsed = parse_log_object("logs/part-0.jsonl.gz", gzip.compress(to_jsonl(table)), router, DAY)
    assert parsed.table.num_rows == 300
    assert not parsed.bad_lines
    logged = table.column("context").combine_chunks()
    assert parsed.table.column("ctx_message").to_pylist() == logged.field("message").to_pylist()
    assert parsed.table.column("ctx_message_embedding").to_pylist() == logged.field("message_embedding").to_pylist()
