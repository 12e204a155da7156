"""Write the serving contract's test vectors (agent_retraining/serving/test_vectors/) from two small real models
trained on simulated support-bot logs (with an open category added): a logistic regression live and a LightGBM
canary, so that a port is checked on a dense graph and a tree ensemble. Deterministic: the same code writes the
same files, which the test suite checks, so a change to the encoding or the graphs cannot leave the vectors (and
every port) behind.

    python -m agent_retraining.dev.test_vectors [FOLDER]
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np

from agent_retraining.contract import MANIFEST_SCHEMA_VERSION, model_prefix
from agent_retraining.datagate.reading import parse_log_object
from agent_retraining.dev.simulate import World, day_events
from agent_retraining.models.candidates import candidate
from agent_retraining.models.encoding import (
    columns,
    context_block,
    context_table,
    encoding_of,
    fingerprint,
    with_actions,
)
from agent_retraining.models.features import encode
from agent_retraining.models.training import fit, hyperparameters
from agent_retraining.serving.client import ServingModel, greedy_policy, routes_to_canary
from agent_retraining.serving.conformance import EXPLORATION, FOLDER
from agent_retraining.serving.manifest_schema import manifest_problem
from agent_retraining.serving.portable_model import PortableModel
from agent_retraining.spec import AgentSpec, load_agent

DAY = date(2026, 6, 1)
CANARY_SHARE = 0.5
SMALL = {"lightgbm": {"num_boost_round": 12, "num_leaves": 6}}  # a readable file, still a real ensemble


def _edge_contexts(encoding: dict) -> list[dict]:
    """Contexts that exercise every branch of the encoding: nulls, absent features, values outside a vocabulary,
    numbers below and above their range, both booleans; texts with Unicode and control characters, empty, and
    cut at max_bytes inside a character; embeddings of whole numbers, zeros, and far from unit length."""
    empty: dict = {}
    nulls = {f["name"]: None for f in encoding["context"]}
    outside, low, high = {}, {}, {}
    for feature in encoding["context"]:
        name = feature["name"]
        if feature["type"] == "category":
            vocabulary = feature["vocabulary"]
            outside[name], low[name], high[name] = "not-in-vocabulary", vocabulary[0], vocabulary[-1]
        elif feature["type"] == "open_category":  # any text is a value: Unicode, empty, one the world logs
            outside[name], low[name], high[name] = "naïve 東京 🚀", "", f"{name}-0000"
        elif feature["type"] == "bool":
            outside[name], low[name], high[name] = None, False, True
        elif feature["type"] == "text":
            outside[name], low[name] = "Naïve ÉTÉ in 東京 🚀\t\u0000\x07 ok?!  ", ""
            high[name] = "€" * (feature["max_bytes"] // 3 + 5)  # cut inside a three-byte character
        elif feature["type"] == "embedding":
            dim = feature["dim"]
            outside[name], low[name] = list(range(-(dim // 2), dim - dim // 2)), [0.0] * dim
            high[name] = [(-1) ** i * 1e6 / (i + 1) for i in range(dim)]
        else:
            span = feature["max"] - feature["min"]
            outside[name] = feature["min"] + span / 3 if feature["type"] == "float" else int(feature["min"] + span // 3)
            low[name] = feature["min"] - span if feature["type"] == "float" else int(feature["min"] - span)
            high[name] = feature["max"] + span if feature["type"] == "float" else int(feature["max"] + span)
    return [empty, nulls, outside, low, high]


def _entry(spec, name: str, table) -> tuple[dict, bytes]:
    matrix, labels = encode(spec, table)
    artifact, params = fit(name, matrix, labels, 7, {**hyperparameters(spec, name), **SMALL.get(name, {})})
    portable = candidate(name).to_onnx(artifact, params, matrix.shape[1])
    sha = hashlib.sha256(artifact).hexdigest()
    version = f"{DAY:%Y%m%d}-{name}-{sha[:12]}"
    prefix = model_prefix(spec.agent_id, version)
    entry = {
        "version": version, "framework": candidate(name).framework,
        "artifact_key": prefix + candidate(name).artifact_name,
        "sha256": sha, "params": params, "encoding_id": fingerprint(encoding_of(spec)), "encoding": encoding_of(spec),
        "onnx": {"key": prefix + "model.onnx", "sha256": hashlib.sha256(portable).hexdigest(), "size": len(portable)},
        "trained_on": {"first": DAY.isoformat(), "last": DAY.isoformat()},
    }  # fmt: skip
    return entry, portable


def vectors_spec() -> AgentSpec:
    """support-bot with an open category, a text, an embedding and action features too, so that the vectors cover
    every feature type (small ones, to keep the file readable)."""
    described = load_agent("support-bot").model_dump()
    described["context"]["product"] = {"type": "open_category", "buckets": 16, "max_null_fraction": 0.1}
    described["context"]["message"] = {"type": "text", "buckets": 32, "max_bytes": 64, "max_null_fraction": 0.1}
    described["context"]["message_embedding"] = {"type": "embedding", "dim": 8, "max_null_fraction": 0.1}
    actions = described["actions"]
    described["action_features"] = {
        "channel": {"type": "category", "vocabulary": ["self_serve", "agent", "money"],
                    "values": dict(zip(actions, ["self_serve", "agent", "self_serve", "money", "agent"], strict=True))},
        "minutes": {"type": "int", "min": 0, "max": 30, "values": dict(zip(actions, [0, 2, 0, 5, 25], strict=True))},
        "needs_human": {"type": "bool", "values": dict(zip(actions, [False, False, False, True, True], strict=True))},
    }  # fmt: skip
    return AgentSpec.model_validate(described)


def write(folder: Path = FOLDER) -> None:
    spec = vectors_spec()
    world = World.for_spec(spec, 0)
    events = day_events(world, DAY, 2000, 3)
    table = parse_log_object("vectors.jsonl", "".join(json.dumps(e) + "\n" for e in events).encode(), spec, DAY).table
    live, live_onnx = _entry(spec, "logistic_regression", table)
    canary, canary_onnx = _entry(spec, "lightgbm", table)
    manifest = {
        "schema_version": MANIFEST_SCHEMA_VERSION, "agent_id": spec.agent_id, **live, "history": [],
        "canary": {**canary, "share": CANARY_SHARE, "first_day": "2026-06-02",
                   "started_at": "2026-06-02T00:00:00+00:00"},
        "canary_history": [],
    }  # fmt: skip
    problem = manifest_problem(manifest)
    if problem:
        raise ValueError(f"the test vectors' manifest breaks the contract: {problem}")
    models = {live["version"]: PortableModel(live_onnx), canary["version"]: PortableModel(canary_onnx)}
    encoding = live["encoding"]
    contexts = _edge_contexts(encoding) + [e["context"] for e in day_events(world, DAY, 25, 11)]
    cases = []
    for number, context in enumerate(contexts):
        key = f"session-{number}"
        arm = canary if routes_to_canary(key, canary["version"], CANARY_SHARE) else live
        block = context_block(encoding, context_table(encoding, [context]))
        actions = len(encoding["actions"])
        rows = with_actions(encoding, np.repeat(block, actions, 0), np.arange(actions))
        scores = ServingModel(arm["version"], "", encoding, models[arm["version"]]).scores([context])
        propensities = greedy_policy(scores, EXPLORATION)[0]
        cases.append({
            "context": context, "routing_key": key, "arm": "canary" if arm is canary else "live",
            "version": arm["version"], "encoded": rows.tolist(), "scores": scores[0].tolist(),
            "greedy_action": encoding["actions"][int(scores[0].argmax())], "propensities": propensities.tolist(),
        })  # fmt: skip
    rng = np.random.default_rng(5)
    shares = [0.0, 1.0, 1e-9, 0.5, 0.999999, *rng.uniform(0, 1, 15).round(6).tolist()]
    routing = [{"canary_version": f"v-{n % 3}", "routing_key": f"key-{n}", "share": share,
                "canary": routes_to_canary(f"key-{n}", f"v-{n % 3}", share)}
               for n, share in enumerate(s for s in shares for _ in range(10))]  # fmt: skip
    for n in range(10):  # a share at a key's own digest / 2^64: only an exact comparison gets these right
        key = f"boundary-{n}"
        digest = int.from_bytes(hashlib.sha256(f"v-edge/{key}".encode()).digest()[:8], "big")
        share = digest / 2**64
        routing.append({"canary_version": "v-edge", "routing_key": key, "share": share,
                        "canary": routes_to_canary(key, "v-edge", share)})  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (folder / "live.onnx").write_bytes(live_onnx)
    (folder / "canary.onnx").write_bytes(canary_onnx)
    vectors = {
        "exploration": EXPLORATION, "columns": columns(encoding),
        "files": {live["onnx"]["key"]: "live.onnx", canary["onnx"]["key"]: "canary.onnx"},
        "cases": cases, "routing": routing,
    }  # fmt: skip
    (folder / "vectors.json").write_text(json.dumps(vectors) + "\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER)
