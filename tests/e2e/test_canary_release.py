"""Canary release end to end: the simulated agent acts through its client, the real DAGs retrain and judge.

Each agent here logs a few days with its original policy, the first night deploys
its first model (there is no champion to canary against), and then the world or
the logs change so that the next nightly run's winner passes the offline gate:
- `canary-better`: the world shifts (scenario `sudden_shift`), the challenger is
  trained on the shifted days and is truly better; live results promote it;
- `canary-worse`: a broken reward join shuffles the logged rewards; the spec's
  offline gate is lax enough to let a model trained on them pass, and live
  results abort it.
In both, the agent's logs show the champion serving every session the canary
did not, and after the verdict only the live model serving.
"""

from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pyarrow as pa

from agent_retraining.contract import canary_verdict_key
from agent_retraining.dev.scenarios import evaluation_contexts, policy_value, scenario
from agent_retraining.dev.simulate import World, day_table, write_day
from agent_retraining.manifest import read_manifest
from agent_retraining.release.canary_verdict import judge_canary
from agent_retraining.serving.client import AgentModelClient
from agent_retraining.storage import put_bytes, read_json
from tests.conftest import asset_events, load_dag_file, spec_variant

START = date(2026, 4, 1)
EVENTS = 5000
SHARE = 0.3
SEED = 5
EXPLORATION = 0.3  # the agent explores enough for the offline gate to see what the shift changed


def canary_spec(support_bot, agent_id: str, **gate):
    release = {"mode": "canary", "share": SHARE, "min_events_per_arm": 600, "margin": 0.02, "max_days": 3}
    training = {**support_bot.training.model_dump(), "window_days": 4, "lightgbm_search": []}
    return spec_variant(support_bot, agent_id=agent_id, release=release, training=training,
                        candidates=["logistic_regression"], gate={**support_bot.gate.model_dump(), **gate})  # fmt: skip


def nightly(spec, day: date) -> dict:
    from agent_retraining.dev.dag_runner import run_night  # the night `make retrain` runs

    dag_run, report = run_night(spec, day)
    assert dag_run.state == "success", report
    return report


def canary_run(spec, day: date, conf: dict | None = None):
    """The agent's canary DAG for the day (logical date: the day's end, as a manual run of that day)."""
    dag = getattr(load_dag_file("canary_release.py"), f"canary_{spec.agent_id}")
    return dag.test(logical_date=datetime.combine(day + timedelta(days=1), time(), UTC), run_conf=conf or {})


def verdict_of(s3, buckets, spec, canary: str, day: date, dag_run) -> dict:
    """The verdict record the run's judge task kept, with its numbers."""
    return read_json(s3, buckets.artifacts, canary_verdict_key(spec.agent_id, canary, day, dag_run.run_id))


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def act_for_a_day(s3, buckets, spec, world, day: date, agent: AgentModelClient, shuffle_rewards: bool = False):
    """The agent polls its manifest, acts on the day's traffic through its client, and the day's logs land."""
    agent.poll()
    events = day_table(world, day, EVENTS, SEED, agent)
    if shuffle_rewards:  # a broken reward join: every reward lands on another event
        rewards = np.random.default_rng(SEED).permutation(events.column("reward").to_numpy())
        events = events.set_column(events.schema.get_field_index("reward"), "reward", pa.array(rewards))
    write_day(s3, buckets.logs, spec, day, events)
    return events


def true_values(spec, world, agent: AgentModelClient) -> dict[str, float]:
    """The expected reward per decision of each arm's policy, from the hidden truth of the world."""
    contexts, signals = evaluation_contexts(world, 5000, SEED)
    values = {}
    for arm, model in (("champion", agent.live), ("canary", agent.canary)):
        probe = AgentModelClient(spec.agent_id, agent.s3, agent.models_bucket, agent.exploration)
        probe.live = model
        values[arm] = policy_value(world, signals, probe.serve(contexts, ["key"] * len(contexts))[0])
    return values


def first_model(s3, buckets, spec, world) -> tuple[str, list[date]]:
    """The warm-up days logged by the original policy, and the first night, which deploys directly."""
    days = [START + timedelta(days=n) for n in range(spec.training.window_days)]
    for day in days:
        write_day(s3, buckets.logs, spec, day, day_table(world, day, EVENTS, SEED))
    report = nightly(spec, days[-1])
    assert report["outcome"] == "deployed", report["decision"]["reason"]
    return report["live_version"], days


def split_by_version(events: pa.Table) -> dict[str, int]:
    versions = events.column("model_version").to_pylist()
    return {version: versions.count(version) for version in set(versions)}


def assert_champion_served_the_rest(events: pa.Table, champion: str, canary: str) -> None:
    served = split_by_version(events)
    assert set(served) == {champion, canary}  # nothing else acted, nobody was left without a model
    sessions = EVENTS / 3  # sessions of three events keep their arm
    assert abs(served[canary] / EVENTS - SHARE) < 4 * np.sqrt(SHARE * (1 - SHARE) / sessions)


def test_a_truly_better_model_is_canaried_and_promoted(install, s3, buckets, support_bot):
    spec = canary_spec(support_bot, "canary-better")
    install(spec)
    shift = scenario("sudden_shift", spec, seed=SEED, days=2)  # the world of day 0, then shifted from day 1 on
    champion, days = first_model(s3, buckets, spec, shift.world(0))
    agent = AgentModelClient(spec.agent_id, s3, buckets.models, EXPLORATION)
    shifted = [days[-1] + timedelta(days=n + 1) for n in range(spec.training.window_days)]
    for day in shifted:
        act_for_a_day(s3, buckets, spec, shift.world(1), day, agent)
    night = nightly(spec, shifted[-1])
    assert night["outcome"] == "canary started", night["decision"]["reason"]
    live, _ = read_manifest(s3, buckets, spec.agent_id)
    canary = live["canary"]["version"]
    assert live["version"] == champion
    assert live["canary"]["first_day"] == (shifted[-1] + timedelta(days=1)).isoformat()

    day = shifted[-1] + timedelta(days=1)
    events = act_for_a_day(s3, buckets, spec, shift.world(1), day, agent)
    assert_champion_served_the_rest(events, champion, canary)
    truth = true_values(spec, shift.world(1), agent)
    assert truth["canary"] > truth["champion"] + 0.01  # truly better: the premise of this test
    # that night's retraining judges its own winner but starts no second canary, and says why
    night = nightly(spec, day)
    assert night["outcome"] == "kept champion"
    assert night["decision"]["reason"].startswith(f"canary {canary} is running, manifest left alone")
    assert read_manifest(s3, buckets, spec.agent_id)[0]["canary"]["version"] == canary
    # the data gate judged each arm's reward rate on its own terms: the champion against its earlier days, the
    # canary (no earlier day) against its deploy-time estimate; neither arm's day was refused
    validation = read_json(s3, buckets.artifacts, night["report_key"].removesuffix("report.json") + "validation.json")
    rates = {c["version"]: c for c in validation["checks"] if c["rule"] == "reward_rate" and c["day"] == str(day)}
    assert set(rates) == {champion, canary}
    assert all(c["success"] for c in rates.values()), [c["message"] for c in rates.values()]
    assert "the policy value its evaluation estimated" in rates[canary]["message"]

    for _ in range(spec.release.max_days):  # the nights until the evidence suffices
        run = canary_run(spec, day)
        record = verdict_of(s3, buckets, spec, canary, day, run)
        if record["verdict"] != "wait":
            break
        assert task_states(run)["keep_waiting"] == "success"
        day += timedelta(days=1)
        assert_champion_served_the_rest(act_for_a_day(s3, buckets, spec, shift.world(1), day, agent), champion, canary)
    assert record["verdict"] == "promote", record
    assert task_states(run)["promote"] == "success"
    assert min(arm["events"] for arm in record["arms"].values()) >= 600
    assert record["difference"]["ci"][0] > -0.02
    # the off-policy value of each arm's greedy policy, beside the live numbers, sees the canary better too
    assert record["arms"]["canary"]["greedy_snips"] > record["arms"]["champion"]["greedy_snips"]
    live, _ = read_manifest(s3, buckets, spec.agent_id)
    assert (live["version"], live["canary"], live["previous_version"]) == (canary, None, champion)
    assert [e["event"] for e in live["canary_history"]] == ["promoted", "started"]
    assert "lower bound is above -0.02" in live["reason"]
    assert asset_events(run.run_id) == {f"{spec.agent_id}_model_manifest": [{
        "agent_id": spec.agent_id, "outcome": "canary_promoted", "version": canary, "canary_version": None,
        "previous_version": champion, "run_id": run.run_id,
    }]}  # fmt: skip

    after = act_for_a_day(s3, buckets, spec, shift.world(1), day + timedelta(days=1), agent)
    assert split_by_version(after) == {canary: EVENTS}


def test_a_model_trained_on_shuffled_rewards_passes_offline_and_is_aborted_live(install, s3, buckets, support_bot):
    lax = {"floors": {"min_roc_auc": 0.3, "max_log_loss": 1.0, "max_brier": 0.5, "max_calibration_error": 0.5},
           "max_regression": {"roc_auc": 0.5, "log_loss": 1.0, "brier": 0.5, "calibration_error": 0.5},
           "policy_value_margin": 1.0, "slices": {"features": [], "max_auc_drop": 1.0},
           "policy_value": {**support_bot.gate.policy_value.model_dump(), "min_difference": -1.0}}  # fmt: skip
    spec = canary_spec(support_bot, "canary-worse", **lax)
    install(spec)
    world = scenario("stationary", spec, seed=SEED, days=2).world(0)
    champion, days = first_model(s3, buckets, spec, world)
    agent = AgentModelClient(spec.agent_id, s3, buckets.models, EXPLORATION)
    broken = [days[-1] + timedelta(days=n + 1) for n in range(spec.training.window_days)]
    for day in broken:
        act_for_a_day(s3, buckets, spec, world, day, agent, shuffle_rewards=True)
    night = nightly(spec, broken[-1])
    assert night["outcome"] == "canary started", night["decision"]["reason"]
    canary = read_manifest(s3, buckets, spec.agent_id)[0]["canary"]["version"]

    day = broken[-1] + timedelta(days=1)  # the join is fixed: rewards are true again
    events = act_for_a_day(s3, buckets, spec, world, day, agent)
    assert_champion_served_the_rest(events, champion, canary)
    truth = true_values(spec, world, agent)
    assert truth["canary"] < truth["champion"] - 0.05  # truly worse: the premise of this test
    # a backfill of that day judges and records, and never touches the canary
    _, etag = read_manifest(s3, buckets, spec.agent_id)
    backfill = judge_canary(s3, buckets, spec, day, "backfill__check", records_only="backfill")
    assert (backfill["verdict"], backfill["acts"]) == ("abort", False)
    assert read_manifest(s3, buckets, spec.agent_id)[1] == etag

    run = canary_run(spec, day)
    record = verdict_of(s3, buckets, spec, canary, day, run)
    assert record["verdict"] == "abort", record
    assert "the canary is worse" in record["reason"]
    assert record["difference"]["ci"][1] < -0.02
    assert task_states(run)["abort"] == "success"
    # beside the live comparison, the off-policy value of each arm's model on every event agrees
    assert record["arms"]["canary"]["greedy_snips"] < record["arms"]["champion"]["greedy_snips"]
    live, _ = read_manifest(s3, buckets, spec.agent_id)
    assert (live["version"], live["canary"]) == (champion, None)
    assert live["canary_history"][0]["event"] == "aborted"

    after = act_for_a_day(s3, buckets, spec, world, day + timedelta(days=1), agent)
    assert split_by_version(after) == {champion: EVENTS}


def test_promote_and_abort_from_the_trigger_form_are_recorded(install, s3, buckets, support_bot):
    from tests.include.test_client import _deploy_model

    spec = canary_spec(support_bot, "canary-operator")
    install(spec)
    champion = _deploy_model(s3, buckets, spec, "logistic_regression", "2026-05-01", 1)
    canary = _deploy_model(s3, buckets, spec, "lightgbm", "2026-05-02", 2, canary_share=SHARE)
    day = date(2026, 5, 3)  # the canary's first day

    _, etag = read_manifest(s3, buckets, spec.agent_id)
    no_reason = canary_run(spec, day, {"abort_now": True})
    assert no_reason.state == "failed"
    assert task_states(no_reason)["judge"] == "failed"
    assert read_manifest(s3, buckets, spec.agent_id)[1] == etag

    agent = AgentModelClient(spec.agent_id, s3, buckets.models)
    agent.poll()
    write_day(s3, buckets.logs, spec, day, day_table(World.for_spec(spec, 0), day, 600, SEED, agent))
    waited = canary_run(spec, day)  # no operator, too few events yet: keep waiting
    record = verdict_of(s3, buckets, spec, canary, day, waited)
    assert (record["verdict"], record["by"]) == ("wait", "rule")
    assert "at least 600 per arm needed" in record["reason"]
    counted = record["arms"]["champion"]["events"] + record["arms"]["canary"]["events"]
    assert counted + record["not_counted"].get("before the canary served its first event", 0) == 600
    assert task_states(waited)["keep_waiting"] == "success"

    promoted = canary_run(spec, day, {"promote_now": True, "reason": "release train 42, signed off by ops"})
    assert verdict_of(s3, buckets, spec, canary, day, promoted)["by"] == "operator"
    live, _ = read_manifest(s3, buckets, spec.agent_id)
    assert (live["version"], live["canary"]) == (canary, None)
    assert live["canary_history"][0]["event"] == "promoted"
    assert "promoted by the operator: release train 42, signed off by ops" in live["canary_history"][0]["reason"]

    newer = _deploy_model(s3, buckets, spec, "lightgbm", "2026-05-03", 3, canary_share=SHARE)
    # an operator acts at once: without the day's logs (there are none for 2026-05-04), and even when the
    # champion's artifact cannot be read, for nothing needs to be judged
    put_bytes(s3, buckets.models, live["artifact_key"], b"lost in an incident")
    aborted = canary_run(spec, date(2026, 5, 4), {"abort_now": True, "reason": "incident 7: wrong answers in German"})
    assert task_states(aborted)["abort"] == "success"
    live, _ = read_manifest(s3, buckets, spec.agent_id)
    assert (live["version"], live["canary"]) == (canary, None)
    events = [(e["event"], e["version"]) for e in live["canary_history"]]
    assert events == [("aborted", newer), ("started", newer), ("promoted", canary), ("started", canary)]
    assert live["canary_history"][0]["reason"] == "aborted by the operator: incident 7: wrong answers in German"
    assert champion in [e["version"] for e in live["history"]]
    nothing = canary_run(spec, date(2026, 5, 5), {"promote_now": True, "reason": "there is no canary now"})
    assert nothing.state == "failed"  # told, not silently skipped
    assert task_states(nothing)["judge"] == "failed"
