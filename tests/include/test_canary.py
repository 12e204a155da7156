"""The canary slot of the manifest (real local S3), the client's routing, and the verdict's arithmetic."""

from datetime import date

import numpy as np
import pytest

from agent_retraining.evaluate.statistics import RatioEstimate
from agent_retraining.manifest import history, read_manifest
from agent_retraining.release.canary_verdict import OperatorOverride, canary_days, difference, verdict
from agent_retraining.release.deploy import (
    CanaryChanged,
    LiveModelChanged,
    abort_canary,
    deploy,
    promote_canary,
    rollback,
)
from agent_retraining.serving.client import routes_to_canary
from agent_retraining.spec import Release
from tests.include.test_manifest import _decision

SHARE = 0.2


def _with_canary(s3, buckets, agent: str) -> dict:
    """A live champion, then a challenger judged against it started as a canary: the pair a verdict judges."""
    deploy(s3, buckets, agent, _decision(s3, buckets, agent, "lightgbm", "2026-03-01"), "run-1")
    started = deploy(s3, buckets, agent, _decision(s3, buckets, agent, "torch_mlp", "2026-03-02"), "run-2", SHARE)
    assert started["slot"] == "canary"
    live, _ = read_manifest(s3, buckets, agent)
    return {
        "champion": live["version"],
        "canary": live["canary"]["version"],
        "started_at": live["canary"]["started_at"],
    }


def test_a_canary_serves_beside_the_champion_it_was_judged_against(s3, buckets):
    judged = _with_canary(s3, buckets, "canary-start")
    champion, canary = judged["champion"], judged["canary"]
    live, _ = read_manifest(s3, buckets, "canary-start")
    assert live["version"] == champion
    assert live["canary"]["version"] == canary
    assert live["canary"]["share"] == SHARE
    assert live["canary"]["first_day"] == "2026-03-03"  # the day after its training data ends
    assert [(e["event"], e["version"], e["run_id"]) for e in live["canary_history"]] == [("started", canary, "run-2")]
    # a retry of the same deploy task reports the start that landed instead of starting it twice
    decision = _decision(s3, buckets, "canary-start", "torch_mlp", "2026-03-02")
    again = deploy(s3, buckets, "canary-start", decision, "run-2", SHARE)
    assert "earlier try" in again["reason"]
    assert len(read_manifest(s3, buckets, "canary-start")[0]["canary_history"]) == 1


def test_no_second_canary_starts_while_one_runs(s3, buckets):
    agent = "canary-second"
    deploy(s3, buckets, agent, _decision(s3, buckets, agent, "lightgbm", "2026-03-01"), "run-1")
    stale = _decision(s3, buckets, agent, "logistic_regression", "2026-03-02")  # judged before the canary started
    deploy(s3, buckets, agent, _decision(s3, buckets, agent, "torch_mlp", "2026-03-02"), "run-2", SHARE)
    before = read_manifest(s3, buckets, agent)
    with pytest.raises(LiveModelChanged, match="with canary"):
        deploy(s3, buckets, agent, stale, "run-3", SHARE)
    assert read_manifest(s3, buckets, agent) == before


def test_a_model_is_never_its_own_canary(s3, buckets):
    agent = "canary-same"
    live = deploy(s3, buckets, agent, _decision(s3, buckets, agent, "lightgbm", "2026-03-01"), "run-1")
    again = deploy(s3, buckets, agent, _decision(s3, buckets, agent, "lightgbm", "2026-03-01"), "run-1b", SHARE)
    assert again == {"deployed": False, "version": live["version"], "slot": "canary",
                     "reason": f"{live['version']} is live already: a model is never its own canary"}  # fmt: skip
    assert read_manifest(s3, buckets, agent)[0]["canary"] is None


def test_a_verdict_on_an_earlier_start_of_the_same_version_does_not_hold(s3, buckets):
    agent = "canary-restart"
    judged = _with_canary(s3, buckets, agent)
    abort_canary(s3, buckets, agent, judged, "looked bad", "abort-1")
    restart = _decision(s3, buckets, agent, "torch_mlp", "2026-03-02")  # the same bytes: the same version
    assert deploy(s3, buckets, agent, restart, "run-3", SHARE)["version"] == judged["canary"]
    with pytest.raises(CanaryChanged, match="started"):
        promote_canary(s3, buckets, agent, judged, "a verdict on the first start", "promote-1")


def test_the_first_model_has_no_champion_to_canary_against_and_goes_live(s3, buckets):
    first = deploy(s3, buckets, "canary-first", _decision(s3, buckets, "canary-first", "lightgbm", "2026-03-01"),
                   "run-1", SHARE)  # fmt: skip
    assert first["slot"] == "live"
    assert read_manifest(s3, buckets, "canary-first")[0]["canary"] is None


def test_promotion_makes_the_canary_live_and_keeps_the_champion_for_a_rollback(s3, buckets):
    agent = "canary-promote"
    judged = _with_canary(s3, buckets, agent)
    champion, canary = judged["champion"], judged["canary"]
    result = promote_canary(s3, buckets, agent, judged, "canary minus champion +0.03", "promote-1")
    assert result == {"deployed": True, "version": canary, "previous_version": champion}
    live, _ = read_manifest(s3, buckets, agent)
    assert (live["version"], live["canary"], live["deployed_by"]) == (canary, None, "canary")
    assert "canary minus champion +0.03" in live["reason"]
    assert [e["version"] for e in history(live)] == [canary, champion]
    assert [e["event"] for e in live["canary_history"]] == ["promoted", "started"]
    retry = promote_canary(s3, buckets, agent, judged, "again", "promote-1")
    assert "earlier try" in retry["reason"]
    assert rollback(s3, buckets, agent, "previous", "live results were a fluke", "rb-1")["version"] == champion


def test_abort_empties_the_slot_and_leaves_the_champion(s3, buckets):
    agent = "canary-abort"
    judged = _with_canary(s3, buckets, agent)
    champion = judged["champion"]
    result = abort_canary(s3, buckets, agent, judged, "upper bound -0.05 below -0.01", "abort-1")
    assert result["aborted"]
    assert result["live_version"] == champion
    live, _ = read_manifest(s3, buckets, agent)
    assert (live["version"], live["canary"]) == (champion, None)
    assert [(e["event"], e["reason"]) for e in live["canary_history"]][0] == (
        "aborted",
        "upper bound -0.05 below -0.01",
    )
    assert [e["version"] for e in history(live)] == [champion]  # an aborted canary was never live
    retry = abort_canary(s3, buckets, agent, judged, "upper bound -0.05 below -0.01", "abort-1")
    assert "earlier try" in retry["reason"]
    assert len(read_manifest(s3, buckets, agent)[0]["canary_history"]) == 2  # started, aborted: once
    with pytest.raises(CanaryChanged, match="now has live"):
        promote_canary(s3, buckets, agent, judged, "too late", "promote-2")


def _from_before_portable_models(s3, buckets, agent: str) -> dict:
    """`_with_canary`'s manifest as the previous release wrote it: schema_version 1, no ONNX, no encoding."""
    import json

    from agent_retraining.contract import manifest_key
    from agent_retraining.storage import put_if_match

    judged = _with_canary(s3, buckets, agent)
    live, etag = read_manifest(s3, buckets, agent)
    old = {k: v for k, v in live.items() if k not in ("onnx", "encoding")}
    old["canary"] = {k: v for k, v in live["canary"].items() if k not in ("onnx", "encoding")}
    old["history"], old["schema_version"] = [], 1
    put_if_match(s3, buckets.models, manifest_key(agent), json.dumps(old).encode(), etag)
    return judged


@pytest.mark.parametrize("ending", ["abort", "promote"])
def test_a_canary_started_before_portable_models_can_still_end_after_the_upgrade(s3, buckets, ending):
    """Without this the nightly runs (which leave a running canary alone) and the canary DAG would deadlock after an
    upgrade: the manifest stays version 1, which the old clients still serve, until a new model is deployed."""
    agent = f"canary-upgrade-{ending}"
    judged = _from_before_portable_models(s3, buckets, agent)
    if ending == "abort":
        abort_canary(s3, buckets, agent, judged, "worse live", "abort-1")
    else:
        promote_canary(s3, buckets, agent, judged, "better live", "promote-1")
    live, _ = read_manifest(s3, buckets, agent)
    assert live["canary"] is None
    assert live["version"] == judged["champion" if ending == "abort" else "canary"]
    assert live["schema_version"] == 1
    assert "onnx" not in live


def test_a_rollback_clears_the_canary_and_a_verdict_on_it_no_longer_holds(s3, buckets):
    agent = "canary-rollback"
    deploy(s3, buckets, agent, _decision(s3, buckets, agent, "logistic_regression", "2026-02-28"), "run-0")
    judged = _with_canary(s3, buckets, agent)
    rollback(s3, buckets, agent, "previous", "bad release elsewhere", "rb-1")
    live, _ = read_manifest(s3, buckets, agent)
    assert live["canary"] is None
    assert live["canary_history"][0]["event"] == "cleared"
    assert "bad release elsewhere" in live["canary_history"][0]["reason"]
    for end in (promote_canary, abort_canary):
        with pytest.raises(CanaryChanged):
            end(s3, buckets, agent, judged, "judged before the rollback", "late-1")
    assert read_manifest(s3, buckets, agent)[0] == live


def test_routing_is_stable_and_serves_the_share_within_sampling_error():
    keys = [f"session-{n}" for n in range(20_000)]
    routed = np.array([routes_to_canary(k, "v-canary", SHARE) for k in keys])
    assert [routes_to_canary(k, "v-canary", SHARE) for k in keys[:500]] == routed[:500].tolist()
    sigma = np.sqrt(SHARE * (1 - SHARE) / len(keys))
    assert abs(routed.mean() - SHARE) < 4 * sigma
    other = np.array([routes_to_canary(k, "v-next", SHARE) for k in keys])
    assert 0 < (routed & other).mean() < SHARE / 2  # another canary draws its own keys (about share^2 overlap)


def _estimate(rewards) -> RatioEstimate:
    estimate = RatioEstimate()
    rewards = np.asarray(rewards, float)
    estimate.add(rewards, np.ones(len(rewards)))
    return estimate


def _arms(champion_rate: float, canary_rate: float, events: int) -> tuple[dict[str, int], dict]:
    def arm(rate):
        return _estimate(np.arange(events) < round(rate * events))

    return {"champion": events, "canary": events}, difference(arm(champion_rate), arm(canary_rate))


RELEASE = Release(mode="canary", share=SHARE, min_events_per_arm=1000, margin=0.01, max_days=5)


@pytest.mark.parametrize(
    ("champion", "canary", "events", "days", "expected", "says"),
    [
        (0.30, 0.33, 4000, 2, "promote", "lower bound is above -0.01"),
        (0.30, 0.30, 20000, 2, "promote", "lower bound is above -0.01"),  # as good, enough evidence
        (0.30, 0.22, 4000, 2, "abort", "the canary is worse"),
        (0.30, 0.29, 4000, 2, "wait", "still spans -0.01"),
        (0.30, 0.40, 500, 2, "wait", "at least 1000 per arm needed"),  # better, but too few events
        (0.30, 0.29, 4000, 5, "abort", "no verdict after 5 day(s)"),
    ],
)
def test_the_verdict_follows_the_interval_and_the_evidence(champion, canary, events, days, expected, says):
    counts, diff = _arms(champion, canary, events)
    action, reason = verdict(RELEASE, counts, diff, days)
    assert action == expected
    assert says in reason


def test_the_operator_decides_and_must_say_why():
    assert OperatorOverride().verdict() is None
    assert OperatorOverride(promote_now=True, reason="business call").verdict()[0] == "promote"
    aborted = OperatorOverride(abort_now=True, reason="incident 42").verdict()
    assert aborted == ("abort", "aborted by the operator: incident 42")
    with pytest.raises(ValueError, match="need a reason"):
        OperatorOverride(abort_now=True)
    with pytest.raises(ValueError, match="choose one"):
        OperatorOverride(promote_now=True, abort_now=True, reason="both at once")


def test_the_difference_interval_is_the_two_sample_one():
    champion, canary = [0, 1] * 500, [1, 1, 1, 0] * 250
    diff = difference(_estimate(champion), _estimate(canary))
    stderr = np.sqrt(np.var(champion) / 1000 + np.var(canary) / 1000)
    assert diff["value"] == pytest.approx(0.25)
    assert diff["ci"] == pytest.approx([0.25 - 1.959964 * stderr, 0.25 + 1.959964 * stderr])


def test_sums_added_day_by_day_equal_the_whole_and_sessions_widen_the_interval():
    rng = np.random.default_rng(3)
    rewards = (rng.random(3000) < 0.4).astype(float)
    whole, by_day = _estimate(rewards), RatioEstimate()
    for part in np.array_split(rewards, 3):
        by_day.add(part, np.ones(len(part)))
    assert by_day.value == pytest.approx(whole.value)
    assert by_day.variance == pytest.approx(whole.variance)
    # the same outcome three times per session: three times the events, but no more evidence than one each
    sessions = RatioEstimate()
    sessions.add(3 * rewards, np.full(3000, 3.0))
    assert sessions.value == pytest.approx(whole.value)
    assert sessions.variance == pytest.approx(whole.variance)
    assert _estimate(np.repeat(rewards, 3)).variance == pytest.approx(whole.variance / 3)  # what ignoring them says


def test_the_canary_is_judged_on_the_days_it_served():
    canary = {"first_day": "2026-03-03"}
    assert canary_days(canary, date(2026, 3, 2), 7) == []  # the night that started it: no day of its logs yet
    assert canary_days(canary, date(2026, 3, 4), 7) == [date(2026, 3, 3), date(2026, 3, 4)]
    assert len(canary_days(canary, date(2026, 3, 20), 7)) == 7
