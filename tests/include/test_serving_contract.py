"""The serving contract (docs/serving-contract.md) as the Python client implements it: its test vectors, its JSON
Schema, and the encoding a port must reproduce. No S3 server: the vectors are files."""

import copy
import filecmp
import json

import numpy as np
import pytest

from agent_retraining.contract import MANIFEST_SCHEMA_VERSION
from agent_retraining.datagate.reading import FEATURE_TYPES
from agent_retraining.dev import test_vectors
from agent_retraining.models.encoding import (
    columns,
    context_block,
    context_columns,
    context_table,
    encoding_of,
    fingerprint,
    with_actions,
)
from agent_retraining.models.features import encode_context, feature_columns
from agent_retraining.serving.client import ServingModel, greedy_policy, routes_to_canary
from agent_retraining.serving.conformance import EXPLORATION, FOLDER, SCORE_TOLERANCE, load_vectors, routing_cases
from agent_retraining.serving.manifest_schema import SCHEMA_FILE, manifest_problem
from agent_retraining.serving.portable_model import PortableModel

# How far the live logistic regression's fit may drift between machines: lbfgs stops within its tolerance at a
# point that depends on the CPU's BLAS kernels (measured: weights and scores 0.004 apart on two AMD EPYC machines).
FIT_TOLERANCE = 0.02


def _close(written, committed, where: str = "") -> None:
    """Equal, but for numbers, which may differ by FIT_TOLERANCE."""
    if isinstance(committed, float) or isinstance(written, float):
        assert abs(written - committed) <= FIT_TOLERANCE, f"{where}: {written} vs {committed}"
    elif isinstance(committed, dict):
        assert isinstance(written, dict), where
        assert written.keys() == committed.keys(), where
        for key in committed:
            _close(written[key], committed[key], f"{where}.{key}")
    elif isinstance(committed, list):
        assert isinstance(written, list), where
        assert len(written) == len(committed), where
        for n, (mine, theirs) in enumerate(zip(written, committed, strict=True)):
            _close(mine, theirs, f"{where}[{n}]")
    else:
        assert written == committed, f"{where}: {written!r} vs {committed!r}"


def _graph(path):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    nodes = [(n.op_type, list(n.input), list(n.output), str(n.attribute)) for n in model.graph.node]
    weights = {w.name: numpy_helper.to_array(w).tolist() for w in model.graph.initializer}
    return [str(model.opset_import), nodes, str(model.graph.input), str(model.graph.output)], weights


def test_the_committed_vectors_are_what_the_code_writes_today(tmp_path):
    """A change to the encoding, a graph or the policy must come with new vectors, or every port would be checked
    against the old contract. The LightGBM canary is the same to the byte on every machine; the logistic
    regression's fit is not, so its weights, the scores they give and the digests that name it are compared within
    FIT_TOLERANCE (every port checks itself against the committed files, whichever machine wrote them)."""
    test_vectors.write(tmp_path)
    assert filecmp.cmp(tmp_path / "canary.onnx", FOLDER / "canary.onnx", shallow=False), "rerun dev.test_vectors"
    written, committed = (json.loads((folder / "manifest.json").read_text()) for folder in (tmp_path, FOLDER))
    renamed = {written["version"]: committed["version"], written["sha256"]: committed["sha256"],
               written["onnx"]["sha256"]: committed["onnx"]["sha256"]}  # fmt: skip

    def read(folder, name: str):
        text = (folder / name).read_text()
        for mine, theirs in renamed.items() if folder == tmp_path else ():
            text = text.replace(mine, theirs)
        return json.loads(text)

    assert read(tmp_path, "manifest.json") == committed
    _close(read(tmp_path, "vectors.json"), read(FOLDER, "vectors.json"), "vectors.json")
    (shape, weights), (committed_shape, committed_weights) = (
        _graph(tmp_path / "live.onnx"),
        _graph(FOLDER / "live.onnx"),
    )
    assert shape == committed_shape, "the live model's graph changed: rerun dev.test_vectors"
    _close(weights, committed_weights, "live.onnx")


def test_the_python_client_reproduces_every_case():
    manifest, files, cases = load_vectors()
    entries = {manifest["version"]: manifest, manifest["canary"]["version"]: manifest["canary"]}
    models = {v: PortableModel((FOLDER / files[e["onnx"]["key"]]).read_bytes()) for v, e in entries.items()}
    canary = manifest["canary"]
    for case in cases:
        routed = routes_to_canary(case["routing_key"], canary["version"], canary["share"])
        assert ("canary" if routed else "live") == case["arm"]
        entry = entries[case["version"]]
        encoding = entry["encoding"]
        block = context_block(encoding, context_table(encoding, [case["context"]]))
        actions = len(encoding["actions"])
        rows = with_actions(encoding, np.repeat(block, actions, 0), np.arange(actions))
        assert np.array_equal(rows, np.array(case["encoded"], dtype=np.float32))
        scores = ServingModel(entry["version"], "", encoding, models[case["version"]]).scores([case["context"]])
        assert np.abs(scores[0] - case["scores"]).max() <= SCORE_TOLERANCE
        assert encoding["actions"][int(scores[0].argmax())] == case["greedy_action"]
        assert np.allclose(greedy_policy(scores, EXPLORATION)[0], case["propensities"], rtol=0, atol=1e-12)
    assert {c["arm"] for c in cases} == {"live", "canary"}


def test_routing_cases_hold_exactly():
    cases = routing_cases()
    assert {c["canary"] for c in cases} == {True, False}
    for case in cases:
        assert routes_to_canary(case["routing_key"], case["canary_version"], case["share"]) is case["canary"]


def test_the_vectors_encoding_is_the_pipelines_encoding_of_the_spec():
    """The manifest carries what the pipeline trained with: the same columns, the same id, the same matrix; and
    the vectors cover every feature type a spec may declare."""
    spec = test_vectors.vectors_spec()
    manifest, _, cases = load_vectors()
    assert manifest["encoding"] == encoding_of(spec)
    assert {f["type"] for f in manifest["encoding"]["context"]} == set(FEATURE_TYPES)
    assert columns(manifest["encoding"]) == feature_columns(spec)
    assert fingerprint(manifest["encoding"]) == manifest["encoding_id"]
    table = context_table(manifest["encoding"], [c["context"] for c in cases])
    assert np.array_equal(encode_context(spec, table), context_block(manifest["encoding"], table))


def test_an_open_category_hashes_every_text_into_its_buckets_and_a_new_value_changes_nothing(support_bot):
    """A value the spec never saw, Unicode, the empty string: each lands in a bucket by the contract's hash; the
    encoding (and so the live model) stays the same whatever values arrive."""
    import hashlib

    spec = test_vectors.vectors_spec()
    encoding = encoding_of(spec)
    product = next(i for i, f in enumerate(encoding["context"]) if f["name"] == "product")
    start = len(context_columns({"context": encoding["context"][:product], "actions": []}))
    values = ["product-0001", "brand-new-product", "naïve 東京 🚀", "", None]
    block = context_block(encoding, context_table(encoding, [{"product": v} for v in values]))[:, start : start + 17]
    for value, row in zip(values, block, strict=True):
        expected = 16 if value is None else int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big") % 16
        assert row.tolist() == [float(i == expected) for i in range(17)]
    assert columns(encoding)[start : start + 17] == [*(f"product#{b}" for b in range(16)), "product__missing"]


def test_the_schema_is_the_version_the_clients_read():
    import json

    assert json.loads(SCHEMA_FILE.read_text())["properties"]["schema_version"]["const"] == MANIFEST_SCHEMA_VERSION
    manifest, _, _ = load_vectors()
    assert manifest_problem(manifest) is None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda m: m.update(schema_version=3), "manifest schema_version 3: this client reads up to 2"),
        (lambda m: m.pop("schema_version"), "schema_version 1 was written before portable models"),
        (lambda m: m.update(schema_version="2"), "schema_version '2' is not an integer"),
        (lambda m: m.pop("onnx"), "'onnx' is a required property"),
        (lambda m: m["onnx"].update(sha256="abc"), "onnx.sha256: 'abc' does not match"),
        (lambda m: m["encoding"]["context"][0].pop("vocabulary"), "'vocabulary' is a required property"),
        (
            lambda m: m["encoding"]["actions"].append("new_action"),
            "action feature 'channel' does not give one value per action (6)",
        ),
        (lambda m: m["encoding"]["context"].pop(), "the live entry's encoding fingerprints to"),
        (lambda m: m["canary"].update(share=1.5), "canary.share: 1.5 is greater than the maximum of 1"),
        (lambda m: m["canary"].update(share=True), "canary.share: True is not of type 'number'"),
        (lambda m: m["canary"].pop("onnx"), "canary: 'onnx' is a required property"),
        (lambda m: m.update(canary=[1, 2]), "canary: [1, 2] is not of type 'object', 'null'"),
    ],
)
def test_a_manifest_a_client_cannot_fully_understand_is_named_and_refused(change, why):
    manifest, _, _ = load_vectors()
    manifest = copy.deepcopy(manifest)
    change(manifest)
    assert why in manifest_problem(manifest)


def test_a_context_value_of_the_wrong_type_is_refused_by_the_features_name(support_bot):
    encoding = encoding_of(support_bot)
    for feature, value in (("channel", 3), ("account_age_days", "12"), ("account_age_days", True),
                           ("account_age_days", 2.5), ("sentiment", float("nan")), ("is_returning_customer", 1),
                           ("sentiment", "high"), ("sentiment", True)):  # fmt: skip
        with pytest.raises(ValueError, match=f"context feature '{feature}' must be"):
            context_table(encoding, [{feature: value}])
