"""The manifest's JSON Schema (manifest.schema.json beside this file), the part of the serving contract a client in
any language can check mechanically. The pipeline checks every manifest against it before writing one, and the
agent's client before serving one: a manifest nobody could serve is never written, and one a client does not fully
understand is never half-used."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from agent_retraining.contract import MANIFEST_SCHEMA_VERSION
from agent_retraining.models.encoding import fingerprint

SCHEMA_FILE = Path(__file__).with_name("manifest.schema.json")


@functools.cache
def _validator():
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def manifest_problem(manifest: object) -> str | None:
    """Why a client of this version cannot serve this manifest, if it cannot."""
    if not isinstance(manifest, dict):
        return f"the manifest is {type(manifest).__name__}, not an object"
    version = manifest.get("schema_version", 1)
    if type(version) is not int:
        return f"manifest schema_version {version!r} is not an integer"
    if version > MANIFEST_SCHEMA_VERSION:
        return f"manifest schema_version {version}: this client reads up to {MANIFEST_SCHEMA_VERSION}"
    if version < MANIFEST_SCHEMA_VERSION:
        return (f"manifest schema_version {version} was written before portable models (no ONNX export or encoding "
                f"in it); the next deploy or rollback writes version {MANIFEST_SCHEMA_VERSION}")  # fmt: skip
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(manifest))
    if error is not None:
        where = ".".join(map(str, error.absolute_path)) or "the manifest"
        return f"{where}: {error.message[:300]}"
    for slot, entry in (("live", manifest), ("canary", manifest.get("canary"))):
        actions = len(entry["encoding"]["actions"]) if entry else 0
        uneven = entry and next((f["name"] for f in entry["encoding"].get("action_features", [])
                                 if len(f["values"]) != actions), None)  # fmt: skip
        if uneven:
            return f"the {slot} entry's action feature '{uneven}' does not give one value per action ({actions})"
        if entry and fingerprint(entry["encoding"]) != entry["encoding_id"]:
            return f"the {slot} entry's encoding fingerprints to {fingerprint(entry['encoding'])}, not its " \
                   f"encoding_id {entry['encoding_id']}"  # fmt: skip
    return None
