"""The closed loop, short: the agent acts through its client every day, the real DAG retrains it every night.

Small volumes, few nights and a world that moves faster than the documented
scenarios (`strength`), so that a few nights show what thirty show in `make loop`.
"""

import importlib.util
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import REPO, spec_variant


@pytest.fixture(scope="module")
def loop(airflow_db, buckets):
    module_spec = importlib.util.spec_from_file_location("loop_script", REPO / "scripts" / "loop.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.fixture
def run_loop(loop, support_bot, monkeypatch, tmp_path):
    def run(scenario: str, days: int, strength: float = 1.0, agent=support_bot) -> dict:
        spec = spec_variant(agent, agent_id=f"loop-{scenario.replace('_', '-')}",
                            training={**agent.training.model_dump(), "window_days": 3})  # fmt: skip
        monkeypatch.setenv("AGENT_SPECS_DIR", str(tmp_path))
        return loop.run_loop(spec, [], scenario, days, events_per_day=1500, seed=3, strength=strength,
                             specs_dir=tmp_path)  # fmt: skip

    return run


def test_under_drift_the_retrained_agent_earns_more_than_the_frozen_one(run_loop, capfd):
    before = datetime.now(UTC)
    result = run_loop("gradual_drift", days=4, strength=5.0)
    _each_night_is_quiet_and_dated_by_its_real_run(capfd.readouterr().out, "retrain_loop-gradual-drift", before)

    assert result["first_night"]["outcome"] == "deployed"
    nights = result["records"]
    assert [r["run_state"] for r in nights] == ["success"] * 4
    assert result["summary"]["nights_deployed"] >= 1
    last = nights[-2:]
    assert sum(r["deployed"] for r in last) > sum(r["frozen"] for r in last)
    assert all(r["oracle"] >= max(r["deployed"], r["frozen"], r["logging"]) for r in nights)
    assert result["summary"]["gap_closed"] > 0


def test_a_broken_release_day_never_deploys_and_the_next_night_runs_without_it(run_loop):
    result = run_loop("broken_release", days=3)

    broken, after = result["records"][result["change_day"] - 1], result["records"][result["change_day"]]
    assert broken["logs_corrupt"]
    assert broken["outcome"] == "data rejected"
    assert broken["live_version"] == result["first_night"]["live_version"]  # the manifest did not move
    assert after["run_state"] == "success"
    assert after["left_out"] == [broken["day"]]
    assert result["summary"]["broken_days_deployed"] == []


def test_a_handler_added_mid_loop_is_served_within_a_few_nights_or_the_decisions_say_why(run_loop):
    """The operator adds an action with its features to the spec: the new encoding's models are judged on the
    floors and against the logging policy (no champion shares their encoding), each night that deploys none says
    why, and once one is deployed the agent serves the handler (its logs then teach the next models)."""
    from agent_retraining.dev.scenarios import NEW_HANDLER
    from agent_retraining.spec import load_agent

    result = run_loop("new_handler", days=5, agent=load_agent("llm-router"))
    records, change = result["records"], result["change_day"]
    assert result["last_actions"][-1] == NEW_HANDLER
    assert all(NEW_HANDLER not in r["served_actions"] for r in records[:change])
    served_on = result["summary"]["first_day_serving_new_actions"]
    assert served_on is not None, [r["reason"] for r in records]
    assert served_on <= change + 3, [r["reason"] for r in records]
    for night in records[change - 1 : served_on - 2]:  # the nights between the change and the deploy
        assert night["outcome"] == "kept champion", night
        assert "policy_value" in night["reason"], night["reason"]
    first_served = records[served_on - 1]
    assert NEW_HANDLER in first_served["served_actions"]
    assert first_served["new_action_share"] >= 0.1 / len(result["last_actions"]) - 1e-9  # explored at the least


def _each_night_is_quiet_and_dated_by_its_real_run(out: str, dag_id: str, before: datetime) -> None:
    """The runner prints one line a task and where Airflow's log went; the runs carry their real start."""
    from airflow.models.dagrun import DagRun

    assert re.search(r"^  evaluate +success +[0-9.]+ s$", out, re.MULTILINE), out[-2000:]
    assert re.search(r"^  train\[0\] +success", out, re.MULTILINE)
    assert all(Path(log).exists() for log in re.findall(r"Airflow's log: (\S+)\)", out))
    runs = DagRun.find(dag_id=dag_id)
    assert runs
    assert all(run.start_date >= before and run.end_date >= run.start_date for run in runs)
