"""The model manifest: the one object the agent reads to know which model to run.

It is treated like a database commit. Artifacts are written once under a
versioned key (`If-None-Match: *`); the manifest is replaced only with
`If-Match: <etag>`. A deploy may only replace the exact manifest (ETag) its
decision was judged against, so a rollback or another run's deploy in between
turns it into a refusal rather than an overwrite; concurrent runs can never
lose an update or point the agent at a half-written model.

In release mode `canary` the manifest also has a canary slot: a model that
passed the offline gate serves a share of the agent's routing keys beside the
live one until the promotion DAG promotes it (it becomes live) or aborts it
(the slot empties). Starts, promotions, aborts and a rollback's clearing of the
slot are kept in `canary_history` with their reasons.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from agent_retraining.contract import MANIFEST_SCHEMA_VERSION, manifest_key, safe_key_part
from agent_retraining.manifest import (
    HISTORY_LIMIT,
    MANIFEST_METRICS,
    history,
    read_manifest,
)
from agent_retraining.models.artifacts import ArtifactError, publish_artifact, verify_published
from agent_retraining.records import Decision, Deployment, Manifest, RecordError, checked, read_record, write_record
from agent_retraining.serving.manifest_schema import manifest_problem
from agent_retraining.storage import (
    Buckets,
    PreconditionFailed,
    put_if_match,
)

CAS_ATTEMPTS = 5


class LiveModelChanged(Exception):
    """The manifest moved after the decision was judged against it: the decision no longer holds."""


class DeployRefused(Exception):
    """A deploy asked of a run whose own decision did not say deploy."""


class RollbackRefused(Exception):
    """A rollback target that does not exist, was trained for another encoding, or whose artifact is bad."""


@dataclass(frozen=True)
class Settled:
    """What `decide` returns when the manifest must not change, with the result to report."""

    result: dict


def compare_and_swap(s3, buckets: Buckets, agent_id: str, change) -> dict | Settled:
    """Replace the manifest with `change(live, etag)`; `change` runs again after every lost race.

    `change` sees the manifest and its ETag as they are now and returns the whole
    new manifest, or Settled (nothing to change), or raises. Returns what was
    written, or the Settled.
    """
    for _ in range(CAS_ATTEMPTS):
        live, etag = read_manifest(s3, buckets, agent_id)
        manifest = change(live, etag)
        if isinstance(manifest, Settled):
            return manifest
        key = manifest_key(agent_id)
        where = f"s3://{buckets.models}/{key} (about to be written)"
        # A live model from before portable models keeps its manifest at version 1 (old clients serve it natively)
        # through a canary's abort or promotion, so an upgrade never strands a running canary; every other
        # manifest is version 2 and must pass the serving contract's schema.
        portable = manifest.get("onnx") is not None
        version = MANIFEST_SCHEMA_VERSION if portable else 1
        manifest = checked(Manifest, {**manifest, "schema_version": version}, where)
        unservable = portable and manifest_problem(manifest)
        if unservable:  # a bug or a hand-edited entry: no agent could serve it, so it is never written
            raise RecordError(f"{where} breaks the serving contract: {unservable}")
        try:
            put_if_match(s3, buckets.models, key, json.dumps(manifest, indent=2).encode(), etag)
        except PreconditionFailed:
            continue  # another run moved the manifest: re-read and decide again
        return manifest
    raise RuntimeError(f"manifest of {agent_id} kept changing during {CAS_ATTEMPTS} compare-and-swap attempts")


def with_canary_event(live: dict | None, canary: dict, event: str, run_id: str, reason: str) -> list[dict]:
    """The manifest's `canary_history` with one more line, newest first: a canary started, promoted, aborted or
    cleared, by which run, and why."""
    line = {"event": event, "version": canary["version"], "run_id": run_id, "reason": reason,
            "at": datetime.now(UTC).isoformat()}  # fmt: skip
    return [line, *(live or {}).get("canary_history", [])][:HISTORY_LIMIT]


def _canary_event_landed(live: dict | None, event: str, run_id: str) -> bool:
    """Whether this run's canary `event` is in the manifest already: a retried task must not write it twice."""
    return any(e["event"] == event and e["run_id"] == run_id for e in (live or {}).get("canary_history", []))


def swap(s3, buckets: Buckets, agent_id: str, decide, rolls_back: bool = False) -> dict:
    """Swap the live model for `decide(live, etag)`'s entry by compare-and-swap (see `compare_and_swap`).

    With `rolls_back`, the model being replaced is marked in the history as rolled
    back by the new entry's run, so `previous` never walks forward to it again. A
    running canary ends with every live swap: promoted when the entry is the
    canary, otherwise cleared (a rollback), with the entry's reason.
    """

    def change(live: dict | None, etag: str | None):
        entry = decide(live, etag)
        if isinstance(entry, Settled):
            return entry
        replaced = history(live)
        if rolls_back and replaced:
            replaced[0]["rolled_back_by"] = entry["run_id"]
        canary_history = (live or {}).get("canary_history", [])
        canary = (live or {}).get("canary")
        if canary:
            ended = "promoted" if canary["version"] == entry["version"] else "cleared"
            canary_history = with_canary_event(live, canary, ended, entry["run_id"], entry["reason"])
        return {
            "agent_id": agent_id,
            **entry,
            "rolled_back_by": None,
            "deployed_at": datetime.now(UTC).isoformat(),
            "previous_version": live["version"] if live else None,
            "history": replaced[:HISTORY_LIMIT],
            "canary": None,
            "canary_history": canary_history,
        }

    manifest = compare_and_swap(s3, buckets, agent_id, change)
    if isinstance(manifest, Settled):
        return manifest.result
    return {"deployed": True, "version": manifest["version"], "previous_version": manifest["previous_version"]}


def _landed_earlier(live: dict | None, run_id: str, version: str | None = None) -> Settled | None:
    """A retried task whose swap already landed (its run id is in the manifest's chain) reports that truth.

    Whether its model is still live or was replaced since, it must neither swap again nor claim it kept the champion.
    """
    chain = history(live)
    landed = next((e for e in chain if e["run_id"] == run_id and version in (None, e["version"])), None)
    if landed is None:
        return None
    reason = f"the swap of run {run_id} had landed on an earlier try of this task"
    if landed is not chain[0]:
        reason += f"; the live model has been {chain[0]['version']} since"
    return Settled({
        "deployed": True, "version": landed["version"], "previous_version": landed.get("previous_version"),
        "reason": reason,
    })  # fmt: skip


def _winner_entry(s3, buckets: Buckets, agent_id: str, decision: dict, run_id: str) -> dict:
    """The decision's winner, published into the models bucket, as a manifest entry."""
    winner = decision["winner"]
    version, key, onnx_key = publish_artifact(s3, buckets, agent_id, winner)
    return {
        "version": version,
        "framework": winner["framework"],
        "artifact_key": key,
        "artifact_uri": f"s3://{buckets.models}/{key}",
        "sha256": winner["sha256"],
        "params": winner["params"],
        "encoding_id": winner["encoding_id"],
        "encoding": winner["encoding"],
        "onnx": {**winner["onnx"], "key": onnx_key},
        "metrics": {k: v for k, v in decision["metrics"][winner["candidate"]].items() if k in MANIFEST_METRICS},
        "trained_on": winner["trained_on"],
        "run_id": run_id,
        "reason": decision["reason"],
        "deployed_by": "retraining",
    }


def _still_judged(live: dict | None, etag: str | None, judged: dict) -> None:
    """Raise LiveModelChanged unless the manifest is the exact one (ETag) the decision was judged against."""
    if etag != judged["manifest_etag"]:
        now = f"{live['version']} (set by {live.get('deployed_by')} run {live.get('run_id')})" if live else "none"
        if live and live.get("canary"):
            now += f" with canary {live['canary']['version']}"
        raise LiveModelChanged(
            f"live model changed from {judged['version'] or 'none'} to {now} since evaluation; "
            "re-run to judge against it"
        )


def deploy(s3, buckets: Buckets, agent_id: str, decision: dict, run_id: str, canary_share: float | None = None) -> dict:
    """Publish the decision's winner and swap the manifest to it, only while the manifest is the one judged against.

    Anything else (a rollback during an approval wait, another run's deploy, a
    canary started since, a first deploy that is no longer first) means the
    decision no longer holds: it raises LiveModelChanged instead of replacing a
    model it never compared with. With `canary_share` (release mode `canary`) the
    winner goes to the manifest's canary slot instead, beside the champion it was
    judged against; a model judged without a champion (the first one, or a new
    feature encoding) has no champion to share traffic with and is swapped in.
    """
    if not decision["deploy"]:
        raise DeployRefused(f"the decision of run {run_id} does not say deploy: {decision['reason']}")
    judged = decision["judged_against"]
    entry = _winner_entry(s3, buckets, agent_id, decision, run_id)
    if canary_share is not None and decision["champion"]["version"] is not None:
        # The canary serves from the day after this run's own day: its window ends `delay_days` before that day
        # when rewards arrive later.
        delay = (decision.get("reward") or {}).get("delay_days", 0)
        first_day = date.fromisoformat(entry["trained_on"]["last"]) + timedelta(days=1 + delay)
        return start_canary(s3, buckets, agent_id, entry, judged, canary_share, first_day)

    def decide(live: dict | None, etag: str | None):
        landed = _landed_earlier(live, run_id, entry["version"])
        if landed:
            return landed
        _still_judged(live, etag, judged)
        if live and live["version"] == entry["version"]:
            already = f"{entry['version']} is live already"
            return Settled({"deployed": False, "version": entry["version"], "reason": already})
        return entry

    return {**swap(s3, buckets, agent_id, decide), "slot": "live"}


class CanaryChanged(Exception):
    """The manifest's canary or champion is no longer the pair a verdict was judged on: the verdict no longer holds."""


CANARY_ONLY_FIELDS = ("share", "first_day", "started_at")


def start_canary(s3, buckets: Buckets, agent_id: str, entry: dict, judged: dict, share: float,
                 serving_from: date) -> dict:  # fmt: skip
    """Put `entry` in the manifest's canary slot, to serve `share` of the routing keys from `serving_from`; the
    champion keeps the rest. Same compare-and-swap and same ETag rule as a deploy, so a canary never starts beside
    a champion it was not judged against, and never beside another canary."""
    first_day = serving_from.isoformat()

    def change(live: dict | None, etag: str | None):
        if _canary_event_landed(live, "started", entry["run_id"]):
            landed = f"the canary start of run {entry['run_id']} had landed on an earlier try"
            return Settled({"deployed": True, "slot": "canary", "version": entry["version"], "reason": landed})
        _still_judged(live, etag, judged)
        if live["version"] == entry["version"]:  # content-addressed: the same day's run trained the same bytes
            already = f"{entry['version']} is live already: a model is never its own canary"
            return Settled({"deployed": False, "slot": "canary", "version": entry["version"], "reason": already})
        canary = {**entry, "share": share, "first_day": first_day, "started_at": datetime.now(UTC).isoformat()}
        reason = f"canary on {share:.0%} of routing keys from {first_day}: {entry['reason']}"
        started_now = with_canary_event(live, canary, "started", entry["run_id"], reason)
        return {**live, "canary": canary, "canary_history": started_now}

    result = compare_and_swap(s3, buckets, agent_id, change)
    if isinstance(result, Settled):
        return result.result
    return {"deployed": True, "slot": "canary", "version": entry["version"], "share": share, "first_day": first_day,
            "live_version": result["version"]}  # fmt: skip


def _judged_canary(live: dict | None, judged: dict) -> dict:
    """The running canary, if it and the champion are still the pair the verdict was judged on (the same canary
    start: a version aborted and started again is another canary)."""
    canary = (live or {}).get("canary")
    now = (live and live["version"], canary and canary["version"], canary and canary["started_at"])
    if now != (judged["champion"], judged["canary"], judged["started_at"]):
        raise CanaryChanged(f"the verdict was on canary {judged['canary']} (started {judged['started_at']}) against "
                            f"{judged['champion']}; the manifest now has live {now[0]}, canary {now[1]} (started "
                            f"{now[2]}); the next run judges what is there")  # fmt: skip
    return canary


def promote_canary(s3, buckets: Buckets, agent_id: str, judged: dict, reason: str, run_id: str) -> dict:
    """Make the judged canary the live model (the champion joins the history, so a rollback can return to it).

    `judged` names the pair the verdict was on: `champion`, `canary` (versions) and the canary's `started_at`.
    """

    def decide(live: dict | None, etag: str | None):
        landed = _landed_earlier(live, run_id, judged["canary"])
        if landed:
            return landed
        canary = _judged_canary(live, judged)
        verify_published(s3, buckets, canary)
        model = {k: v for k, v in canary.items() if k not in CANARY_ONLY_FIELDS}
        return {**model, "run_id": run_id, "reason": f"canary promoted: {reason}", "deployed_by": "canary"}

    return swap(s3, buckets, agent_id, decide)


def abort_canary(s3, buckets: Buckets, agent_id: str, judged: dict, reason: str, run_id: str) -> dict:
    """Empty the canary slot; the champion serves every routing key again."""

    def change(live: dict | None, etag: str | None):
        if _canary_event_landed(live, "aborted", run_id):
            landed = f"the abort of run {run_id} had landed on an earlier try"
            return Settled({"aborted": True, "version": judged["canary"], "reason": landed})
        canary = _judged_canary(live, judged)
        return {**live, "canary": None, "canary_history": with_canary_event(live, canary, "aborted", run_id, reason)}

    result = compare_and_swap(s3, buckets, agent_id, change)
    if isinstance(result, Settled):
        return result.result
    return {"aborted": True, "version": judged["canary"], "live_version": result["version"], "reason": reason}


def rollback(
    s3, buckets: Buckets, agent_id: str, target: str, reason: str, run_id: str, encoding_id: str | None = None
) -> dict:
    """Point the manifest back at an earlier version ("previous" or a version name) by the same swap.

    `previous` is the newest earlier version not rolled away from, so two
    rollbacks in a row walk back, never forth. With `encoding_id` (the agent's
    current spec), a target trained for another encoding is refused: the agent's
    client would refuse to load it.
    """
    if target != "previous":
        safe_key_part(target, "target version")

    def decide(live: dict | None, etag: str | None):
        landed = _landed_earlier(live, run_id)
        if landed:
            return landed
        chain = history(live)
        earlier = chain[1:]
        if not earlier:
            raise RollbackRefused(f"{agent_id} has no earlier version to roll back to")
        if target == "previous":
            left = {e["version"] for e in chain if e.get("rolled_back_by")} | {chain[0]["version"]}
            entry = next((e for e in earlier if e["version"] not in left), None)
            if entry is None:
                raise RollbackRefused(f"{agent_id}: every earlier version was rolled away from already")
        else:
            entry = next((e for e in earlier if e["version"] == target), None)
            if entry is None:
                known = ", ".join(dict.fromkeys(e["version"] for e in earlier))
                raise RollbackRefused(f"{target} is not an earlier version of {agent_id} (known: {known})")
        if encoding_id and entry.get("encoding_id") != encoding_id:
            raise RollbackRefused(
                f"refusing to roll back to {entry['version']}: it was trained for feature encoding "
                f"{entry.get('encoding_id')}, the agent's spec now encodes {encoding_id}, so its client would refuse it"
            )
        if entry.get("onnx") is None or entry.get("encoding") is None:
            raise RollbackRefused(f"refusing to roll back to {entry['version']}: it predates portable models (no ONNX "
                                  "export or encoding in its entry), so no client of schema_version "
                                  f"{MANIFEST_SCHEMA_VERSION} could serve it")  # fmt: skip
        try:
            verify_published(s3, buckets, entry)
        except ArtifactError as exc:
            raise RollbackRefused(f"refusing to roll back to {entry['version']}: {exc}") from exc
        return {**entry, "run_id": run_id, "reason": f"rollback: {reason}", "deployed_by": "rollback"}

    return swap(s3, buckets, agent_id, decide, rolls_back=True)


def deploy_run(
    s3, buckets: Buckets, agent_id: str, run_dir: str, run_id: str, canary_share: float | None = None
) -> dict:
    """Deploy what this run's own decision chose, and record what happened (or why not) next to it."""
    decision = read_record(s3, buckets.artifacts, run_dir + "decision.json", Decision)
    try:
        result = deploy(s3, buckets, agent_id, decision, run_id, canary_share)
    except (LiveModelChanged, DeployRefused) as exc:
        write_record(
            s3, buckets.artifacts, run_dir + "deployment.json", Deployment, {"deployed": False, "refused": str(exc)}
        )
        raise
    return write_record(s3, buckets.artifacts, run_dir + "deployment.json", Deployment, result)
