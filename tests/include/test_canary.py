"""The canary slot of the manifest (real local S3), the client's routing, and the verdict's arithmetic."""

from datetime import date

import numpy as np
import pytest

from agent_retraining.canary_verdict import (
    ArmRewards,
    GreedyValue,
    OperatorOverride,
    canary_days,
    difference,
    verdict,
)
from agent_retraining.client import routes_to_canary
from agent_retraining.evaluation import snips
from agent_retraining.manifest import (
    CanaryChanged,
    LiveModelChanged,
    abort_canary,
    deploy,
    history,
    promote_canary,
    read_manifest,
    rollback,
)
from agent_retraining.spec import Release
from tests.include.test_manifest import _decision

SHARE = 0.2


def _with_canary(s3, buckets, agent: str) -> tuple[str, str]:
    """A live champion, then a challenger judged against it started as a canary; (champion, canary) versions."""
    champion = deploy(s3, buckets, agent, _decision(s3, buckets, agent, "lightgbm", "2026-03-01"), "run-1")
    started = deploy(s3, buckets, agent, _decision(s3, buckets, agent, "torch_mlp", "2026-03-02"), "run-2", SHARE)
    assert started["slot"] == "canary"
    return champion["version"], started["version"]


def test_a_canary_serves_beside_the_champion_it_was_judged_against(s3, buckets):
    champion, canary = _with_canary(s3, buckets, "canary-start")
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


def test_the_first_model_has_no_champion_to_canary_against_and_goes_live(s3, buckets):
    first = deploy(s3, buckets, "canary-first", _decision(s3, buckets, "canary-first", "lightgbm", "2026-03-01"),
                   "run-1", SHARE)  # fmt: skip
    assert first["slot"] == "live"
    assert read_manifest(s3, buckets, "canary-first")[0]["canary"] is None


def test_promotion_makes_the_canary_live_and_keeps_the_champion_for_a_rollback(s3, buckets):
    agent = "canary-promote"
    champion, canary = _with_canary(s3, buckets, agent)
    result = promote_canary(s3, buckets, agent, canary, champion, "canary minus champion +0.03", "promote-1")
    assert result == {"deployed": True, "version": canary, "previous_version": champion}
    live, _ = read_manifest(s3, buckets, agent)
    assert (live["version"], live["canary"], live["deployed_by"]) == (canary, None, "canary")
    assert "canary minus champion +0.03" in live["reason"]
    assert [e["version"] for e in history(live)] == [canary, champion]
    assert [e["event"] for e in live["canary_history"]] == ["promoted", "started"]
    retry = promote_canary(s3, buckets, agent, canary, champion, "again", "promote-1")
    assert "earlier try" in retry["reason"]
    assert rollback(s3, buckets, agent, "previous", "live results were a fluke", "rb-1")["version"] == champion


def test_abort_empties_the_slot_and_leaves_the_champion(s3, buckets):
    agent = "canary-abort"
    champion, canary = _with_canary(s3, buckets, agent)
    result = abort_canary(s3, buckets, agent, canary, champion, "upper bound -0.05 below -0.01", "abort-1")
    assert result["aborted"]
    assert result["live_version"] == champion
    live, _ = read_manifest(s3, buckets, agent)
    assert (live["version"], live["canary"]) == (champion, None)
    assert [(e["event"], e["reason"]) for e in live["canary_history"]][0] == (
        "aborted",
        "upper bound -0.05 below -0.01",
    )
    assert [e["version"] for e in history(live)] == [champion]  # an aborted canary was never live
    with pytest.raises(CanaryChanged, match="now has live"):
        promote_canary(s3, buckets, agent, canary, champion, "too late", "promote-2")


def test_a_rollback_clears_the_canary_and_a_verdict_on_it_no_longer_holds(s3, buckets):
    agent = "canary-rollback"
    deploy(s3, buckets, agent, _decision(s3, buckets, agent, "logistic_regression", "2026-02-28"), "run-0")
    champion, canary = _with_canary(s3, buckets, agent)
    rollback(s3, buckets, agent, "previous", "bad release elsewhere", "rb-1")
    live, _ = read_manifest(s3, buckets, agent)
    assert live["canary"] is None
    assert live["canary_history"][0]["event"] == "cleared"
    assert "bad release elsewhere" in live["canary_history"][0]["reason"]
    for end in (promote_canary, abort_canary):
        with pytest.raises(CanaryChanged):
            end(s3, buckets, agent, canary, champion, "judged before the rollback", "late-1")
    assert read_manifest(s3, buckets, agent)[0] == live


def test_routing_is_stable_and_serves_the_share_within_sampling_error():
    keys = [f"session-{n}" for n in range(20_000)]
    routed = np.array([routes_to_canary(k, "v-canary", SHARE) for k in keys])
    assert [routes_to_canary(k, "v-canary", SHARE) for k in keys[:500]] == routed[:500].tolist()
    sigma = np.sqrt(SHARE * (1 - SHARE) / len(keys))
    assert abs(routed.mean() - SHARE) < 4 * sigma
    other = np.array([routes_to_canary(k, "v-next", SHARE) for k in keys])
    assert 0 < (routed & other).mean() < SHARE / 2  # another canary draws its own keys (about share^2 overlap)


def _arm(rewards) -> ArmRewards:
    arm = ArmRewards()
    arm.add(np.asarray(rewards, float))
    return arm


def _arms(champion_rate: float, canary_rate: float, events: int) -> dict[str, ArmRewards]:
    def arm(rate):
        return _arm(np.arange(events) < round(rate * events))

    return {"champion": arm(champion_rate), "canary": arm(canary_rate)}


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
    arms = _arms(champion, canary, events)
    action, reason = verdict(RELEASE, arms, difference(arms["champion"], arms["canary"]), days, OperatorOverride())
    assert action == expected
    assert says in reason


def test_the_operator_overrides_the_rule_and_must_say_why():
    arms = _arms(0.30, 0.22, 4000)
    diff = difference(arms["champion"], arms["canary"])
    assert verdict(RELEASE, arms, diff, 1, OperatorOverride(promote_now=True, reason="business call"))[0] == "promote"
    assert (
        verdict(RELEASE, _arms(0.3, 0.4, 9000), diff, 1, OperatorOverride(abort_now=True, reason="incident 42"))[1]
        == "aborted by the operator: incident 42"
    )
    with pytest.raises(ValueError, match="need a reason"):
        OperatorOverride(abort_now=True)
    with pytest.raises(ValueError, match="choose one"):
        OperatorOverride(promote_now=True, abort_now=True, reason="both at once")


def test_the_difference_interval_is_the_two_sample_one():
    champion, canary = _arm([0, 1] * 500), _arm([1, 1, 1, 0] * 250)
    diff = difference(champion, canary)
    stderr = np.sqrt(np.var([0, 1] * 500, ddof=1) / 1000 + np.var([1, 1, 1, 0] * 250, ddof=1) / 1000)
    assert diff["value"] == pytest.approx(0.25)
    assert diff["ci"] == pytest.approx([0.25 - 1.959964 * stderr, 0.25 + 1.959964 * stderr])


def test_greedy_value_summed_day_by_day_equals_snips_on_all_rows():
    rng = np.random.default_rng(3)
    matches, rewards = rng.random(3000) < 0.3, (rng.random(3000) < 0.4).astype(float)
    propensities = rng.choice([0.04, 0.84], size=3000)
    value = GreedyValue()
    for part in np.array_split(np.arange(3000), 3):  # three days
        value.add(matches[part], rewards[part], propensities[part])
    expected = snips(matches, rewards, propensities)
    summary = value.summary()
    assert summary["value"] == pytest.approx(expected["value"])
    assert summary["ci"] == pytest.approx([expected["ci_low"], expected["ci_high"]])
    assert summary["matched_events"] == expected["matched_rows"]


def test_the_canary_is_judged_on_the_days_it_served():
    canary = {"first_day": "2026-03-03"}
    assert canary_days(canary, date(2026, 3, 2), 7) == []  # the night that started it: no day of its logs yet
    assert canary_days(canary, date(2026, 3, 4), 7) == [date(2026, 3, 3), date(2026, 3, 4)]
    assert len(canary_days(canary, date(2026, 3, 20), 7)) == 7
