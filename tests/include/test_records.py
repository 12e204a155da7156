"""The records stages hand each other: one JSON form each, checked when written and again when read back."""

from __future__ import annotations

import json

import pytest

from agent_retraining.records import Decision, Deployment, Manifest, RecordError, WindowVerdict, checked, parse

ENTRY = {"version": "20260301-lightgbm-abc", "framework": "lightgbm", "artifact_key": "bot/models/v/model.txt",
         "sha256": "ab" * 32, "params": {"num_leaves": 31}, "encoding_id": "e1",
         "trained_on": {"first": "2026-02-20", "last": "2026-03-01"}}  # fmt: skip
DECISION = {"agent_id": "bot", "window": {"first": "2026-02-20", "last": "2026-03-01"}, "holdout_rows": 800,
            "primary_metric": "roc_auc", "metrics": {"lightgbm": {"roc_auc": 0.8}},
            "champion": {"version": None, "note": "no model is live yet"},
            "judged_against": {"version": None, "manifest_etag": None},
            "winner": {**{k: ENTRY[k] for k in ("framework", "params", "sha256", "encoding_id", "trained_on")},
                       "candidate": "lightgbm", "artifact_key": "bot/runs/x/model.txt"},
            "rules": [{"rule": "floor_roc_auc", "passed": True, "detail": "roc_auc 0.8000 >= 0.6000"}],
            "deploy": True, "reason": "deploy lightgbm", "run_type": "manual"}  # fmt: skip


def test_a_record_as_written_reads_back_the_same():
    for record_type, value in (
        (Decision, DECISION),
        (Manifest, ENTRY),
        (Deployment, {"deployed": False, "refused": "x"}),
    ):
        assert parse(record_type, json.dumps(value).encode(), "s3://b/k") == value


def test_a_record_written_before_a_field_existed_is_still_read_and_a_newer_field_is_kept():
    older = {k: v for k, v in DECISION.items()}  # no candidates, alert, would_deploy: written before they existed
    assert checked(Decision, older, "s3://b/old") == older
    assert checked(Manifest, {**ENTRY, "history": [{"version": "v0", "encoding_id": None}]}, "s3://b/m")  # an old entry
    newer = {**ENTRY, "schema_version": 1, "routing": {"by": "session"}}  # a field this version does not know
    assert checked(Manifest, newer, "s3://b/new")["routing"] == {"by": "session"}


@pytest.mark.parametrize(
    ("record_type", "value", "field"),
    [
        (
            Decision,
            {k: v for k, v in DECISION.items() if k != "judged_against"},
            "field 'judged_against': Field required",
        ),
        (Decision, {**DECISION, "deploy": "yes please"}, "field 'deploy': Input should be a valid boolean"),
        (Manifest, {**ENTRY, "sha256": None}, "field 'sha256': Input should be a valid string"),
        (Manifest, {**ENTRY, "history": [{"framework": "torch"}]}, "field 'history.0.version': Field required"),
        (WindowVerdict, {"passed": True}, "field 'agent_id': Field required"),
    ],
)
def test_a_record_that_breaks_its_type_is_refused_naming_the_object_and_the_field(record_type, value, field):
    with pytest.raises(RecordError) as refused:
        checked(record_type, value, "s3://artifacts/bot/runs/r/decision.json")
    assert str(refused.value).startswith(
        f"s3://artifacts/bot/runs/r/decision.json is not a valid {record_type.__name__}"
    )
    assert field in str(refused.value)


def test_bytes_that_are_not_json_are_refused_naming_the_object():
    with pytest.raises(RecordError, match=r"^s3://models/bot/manifest.json is not JSON"):
        parse(Manifest, b"{not json", "s3://models/bot/manifest.json")
