"""The MLflow mirror against a real `mlflow server` (sqlite backend) on this machine, checked through MLflow's own
Python client: a night's runs, their metrics and decision, and the registry's aliases through a deploy, a canary
and a rollback.

MLflow lives in its own virtual environment (.local/mlflow-venv, from requirements-mlflow.txt by
scripts/mlflow_venv.sh): the pipeline only speaks its REST API, so Airflow's environment never installs it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from agent_retraining.contract import run_prefix
from agent_retraining.dev.simulate import World, day_table, write_day
from agent_retraining.manifest import read_manifest
from agent_retraining.records import Decision, Manifest, checked
from agent_retraining.storage import read_json
from agent_retraining.tracking.mlflow import MlflowSettings, move_aliases, record_night
from tests.conftest import load_dag_file, spec_variant
from tests.e2e.airflow_cluster import free_port, wait_or_kill

REPO = Path(__file__).resolve().parents[2]
AGENT = "support-bot"
ARTIFACTS, MODELS = "test-agent-artifacts", "test-agent-models"
DAY = "2026-03-02"


@pytest.fixture(scope="session")
def mlflow_python() -> str:
    """The MLflow environment's python, created on first use (minutes; then instant)."""
    made = subprocess.run([str(REPO / "scripts" / "mlflow_venv.sh")], capture_output=True, text=True, check=True)
    return made.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def mlflow_server(mlflow_python, tmp_path_factory):
    """`mlflow server` on a free port of 127.0.0.1 for the session, stopped (with its workers) after."""
    home = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    output = (home / "server.log").open("w")
    server = subprocess.Popen(
        [str(Path(mlflow_python).with_name("mlflow")), "server", "--backend-store-uri", f"sqlite:///{home}/mlflow.db",
         "--default-artifact-root", str(home / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                pytest.fail(f"mlflow server exited with {server.returncode}: {(home / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer /health in 180 s: {(home / 'server.log').read_text()}")
            time.sleep(0.5)
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        wait_or_kill(server, timeout=20)
        output.close()


@pytest.fixture
def settings(mlflow_server):
    return MlflowSettings(mlflow_server, timeout_s=10, budget_s=120)


def mlflow_says(mlflow_python: str, uri: str, what: str, name: str) -> dict:
    """What MLflow's own client sees (tests/e2e/mlflow_view.py, run in MLflow's environment)."""
    view = Path(__file__).with_name("mlflow_view.py")
    done = subprocess.run([mlflow_python, str(view), uri, what, name], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _metrics(roc_auc: float, policy_value: float) -> dict:
    """One model's holdout metrics as evaluate's model_metrics writes them (slices, curve and every estimator)."""
    ci = [policy_value - 0.03, policy_value + 0.03]
    return {
        "roc_auc": roc_auc, "log_loss_skill": 0.08, "brier_skill": 0.07, "log_loss": 0.61, "brier": 0.21,
        "rmse": 0.46, "mae": 0.41, "calibration_error": 0.02,
        "calibration_curve": [{"predicted": 0.31, "observed": 0.3, "rows": 400}],
        "policy_value": policy_value, "policy_value_ci": ci, "policy_matched_rows": 310,
        "policy_values": {"snips": {"value": policy_value, "ci": ci, "matched_rows": 310},
                          "dr": {"value": policy_value + 0.01, "ci": None, "matched_rows": 310}},
        "slices": {"action=faq": {"rows": 250, "roc_auc": roc_auc - 0.02, "log_loss": 0.6},
                   "channel=chat": {"rows": 300, "roc_auc": None, "log_loss": 0.63}},
    }  # fmt: skip


def _trained(name: str, framework: str, params: dict, digest: str) -> dict:
    """A candidate's metadata as `train` writes it."""
    prefix = f"{AGENT}/runs/dt={DAY}/run=scheduled__{DAY}/candidates/{name}/"
    return {
        "candidate": name, "framework": framework, "params": params, "search": [],
        "artifact_key": prefix + "model.txt", "sha256": digest * 64, "size": 1234, "train_rows": 5600,
        "onnx": {"key": prefix + "model.onnx", "sha256": digest * 64, "size": 2345},
        "feature_count": 12, "encoding_id": "a9d23392c04e8f8e", "encoding": {"context": [], "actions": ["faq"]},
        "trained_on": {"first": "2026-02-17", "last": DAY},
    }  # fmt: skip


CANDIDATES = [
    _trained("lightgbm", "lightgbm", {"num_leaves": 31, "learning_rate": 0.05, "n_estimators": 200}, "a"),
    _trained("logistic_regression", "sklearn", {"C": 1.0, "max_iter": 2000, "seed": 7}, "b"),
]


def _decision() -> dict:
    """The night's decision.json: lightgbm passes every rule and is deployed, logistic_regression regresses on AUC;
    both judged against the champion 20260301-lightgbm-... (checked against the real record type)."""
    rules = [
        {"rule": "data_validated", "passed": True, "detail": "14 days validated"},
        {"rule": "portable", "passed": True, "detail": "ONNX scores match the native model"},
        {"rule": "floor_roc_auc", "passed": True, "detail": "roc_auc 0.7400 >= 0.6000"},
        {"rule": "no_regression_roc_auc", "passed": True, "detail": "roc_auc 0.7400 >= 0.7000"},
        {"rule": "policy_value", "passed": True, "detail": "lower bound -0.0100 >= -0.0200"},
    ]
    regression = {"rule": "no_regression_roc_auc", "passed": False, "detail": "roc_auc 0.6100 < 0.7000"}
    champion = "20260301-lightgbm-cccccccccccc"
    return checked(Decision, {
        "agent_id": AGENT, "window": {"first": "2026-02-17", "last": DAY}, "holdout_rows": 1600,
        "positive_rewards": 480, "primary_metric": "roc_auc",
        "metrics": {"lightgbm": _metrics(0.74, 0.36), "logistic_regression": _metrics(0.61, 0.31),
                    "champion": _metrics(0.72, 0.34)},
        "estimator": {"name": "snips", "reward_model": "lightgbm"},
        "policy_value_vs_logging": {"difference": 0.05, "ci": [0.02, 0.08]},
        "policy_value_vs_champion": {"difference": 0.02, "ci": [-0.01, 0.05]},
        "champion": {"version": champion, "note": f"champion is the live model {champion}", "floors": [],
                     "fails_floors": False},
        "candidates": [{"candidate": "lightgbm", "passed": True, "failed": [], "roc_auc": 0.74},
                       {"candidate": "logistic_regression", "passed": False, "failed": [regression], "roc_auc": 0.61}],
        "judged_against": {"version": champion, "manifest_etag": '"3f2a"'},
        "winner": CANDIDATES[0], "rules": rules, "deploy": True, "would_deploy": True, "alert": False,
        "run_type": "scheduled",
        "reason": f"deploy lightgbm: it passed every rule against the floors and champion {champion}",
    }, "the test's decision.json")  # fmt: skip


def test_a_night_is_recorded_once_per_model_even_when_the_task_is_retried(settings, mlflow_python, mlflow_server):
    run_id = f"scheduled__{DAY}T00:00:00+00:00"
    deployment = {"deployed": True, "slot": "live", "version": "20260302-lightgbm-aaaaaaaaaaaa"}
    first = record_night(settings, AGENT, DAY, run_id, _decision(), CANDIDATES, ARTIFACTS, deployment)
    again = record_night(settings, AGENT, DAY, run_id, _decision(), CANDIDATES, ARTIFACTS, deployment)
    assert first.ok, first.error
    assert again.ok, again.error
    assert again.details["runs"] == first.details["runs"]  # the retry completed the same runs
    assert set(first.details["runs"]) == {"lightgbm", "logistic_regression", "champion"}

    seen = mlflow_says(mlflow_python, mlflow_server, "runs", f"agent-retraining/{AGENT}")
    champion_run = f"{DAY} champion 20260301-lightgbm-cccccccccccc"
    assert set(seen) == {f"{DAY} lightgbm", f"{DAY} logistic_regression", champion_run}
    winner, loser, champion = seen[f"{DAY} lightgbm"], seen[f"{DAY} logistic_regression"], seen[champion_run]
    assert all(run["status"] == "FINISHED" and run["roc_auc_points"] == 1 for run in seen.values())
    assert winner["metrics"]["roc_auc"] == 0.74
    assert winner["metrics"]["policy_value"] == 0.36
    assert winner["metrics"]["policy_value_ci.low"] == pytest.approx(0.33)
    assert winner["metrics"]["policy_values.dr.value"] == pytest.approx(0.37)
    assert winner["metrics"]["slices.action_faq.roc_auc"] == pytest.approx(0.72)
    assert winner["metrics"]["vs_champion.difference"] == 0.02
    assert "slices.channel_chat.roc_auc" not in winner["metrics"]  # None: not measurable, so not a metric
    assert loser["metrics"]["roc_auc"] == 0.61
    assert champion["metrics"]["roc_auc"] == 0.72
    assert winner["params"] == {"candidate": "lightgbm", "framework": "lightgbm", "hp.num_leaves": "31",
                                "hp.learning_rate": "0.05", "hp.n_estimators": "200"}  # fmt: skip
    assert winner["tags"]["artifact_uri"] == f"s3://{ARTIFACTS}/{CANDIDATES[0]['artifact_key']}"
    assert winner["tags"]["artifact_sha256"] == "a" * 64
    assert winner["tags"]["airflow_run_id"] == run_id
    assert winner["tags"]["day"] == DAY
    assert {run["tags"]["decision.deploy"] for run in seen.values()} == {"true"}
    assert winner["tags"]["deployed"] == "true"
    assert winner["tags"]["deployment.version"] == deployment["version"]
    assert winner["tags"]["rule.no_regression_roc_auc"] == "passed"
    assert winner["tags"]["rule.policy_value.detail"] == "lower bound -0.0100 >= -0.0200"
    assert loser["tags"]["deployed"] == "false"
    assert loser["tags"]["decision.passed"] == "false"
    assert loser["tags"]["rule.no_regression_roc_auc"] == "failed"
    assert loser["tags"]["decision.failed_rules"] == "no_regression_roc_auc"
    assert champion["tags"]["manifest_version"] == "20260301-lightgbm-cccccccccccc"


def test_hostile_values_are_cut_to_mlflows_limits_and_never_fail_the_night(settings, mlflow_python, mlflow_server):
    decision = _decision()
    decision["reason"] = "x" * 20_000
    deep = {"a": {"b": {"c": {"d": {"e": {"f": 1.0}}}}}}
    decision["metrics"]["lightgbm"] |= {"brier": float("nan"), "rmse": float("inf"), "mae": 10**400,
                                        "weird/../key=1": 0.5, "deep": deep}  # fmt: skip
    hostile = {**CANDIDATES[0], "params": {"layers": [64] * 3000, "../name": "v", "ok": None}, "onnx": "not a dict"}
    del hostile["sha256"]
    outcome = record_night(settings, "hostile-bot", DAY, "manual__'quoted'", decision, [hostile, 42, {}], ARTIFACTS)
    assert outcome.ok, outcome.error
    run = mlflow_says(mlflow_python, mlflow_server, "runs", "agent-retraining/hostile-bot")[f"{DAY} lightgbm"]
    assert len(run["tags"]["decision.reason"]) == 8000
    assert run["tags"]["decision.reason"].endswith("...[truncated]")
    assert len(run["params"]["hp.layers"]) == 6000
    assert run["params"]["hp..._name"] == "v"
    assert "hp.ok" not in run["params"]
    assert not {"brier", "rmse", "mae"} & set(run["metrics"])
    assert run["metrics"]["weird_.._key_1"] == 0.5
    assert "deep.a.b.c.d.e.f" not in run["metrics"]  # nested past MAX_DEPTH
    assert "artifact_sha256" not in run["tags"]
    assert "onnx_uri" not in run["tags"]

    garbage = {"metrics": "none", "candidates": 5, "rules": None, "winner": [], "window": "2026"}
    outcome = record_night(settings, "hostile-bot", DAY, "manual__garbage", garbage, [CANDIDATES[1], None, "x"],
                           ARTIFACTS, deployment={"deployed": "yes"})  # fmt: skip
    assert outcome.ok, outcome.error
    assert list(outcome.details["runs"]) == ["logistic_regression"]


def _entry(version: str, digest: str, run_id: str, deployed_by: str = "retraining") -> dict:
    """A model entry of the manifest, as deploy writes it."""
    key = f"{AGENT}/models/{version}/"
    return {
        "version": version, "framework": "lightgbm", "artifact_key": key + "model.txt",
        "artifact_uri": f"s3://{MODELS}/{key}model.txt", "sha256": digest * 64, "params": {"num_leaves": 31},
        "encoding_id": "a9d23392c04e8f8e", "encoding": {"context": [], "actions": ["faq"]},
        "onnx": {"key": key + "model.onnx", "sha256": digest * 64, "size": 2345}, "metrics": {"roc_auc": 0.74},
        "trained_on": {"first": "2026-02-15", "last": version[:4] + "-" + version[4:6] + "-" + version[6:8]},
        "run_id": run_id, "reason": f"deploy {version}", "deployed_at": "2026-03-02T01:00:00+00:00",
        "deployed_by": deployed_by,
    }  # fmt: skip


def _manifest(live: dict, history: list[dict], canary: dict | None = None) -> dict:
    return checked(Manifest, {
        "schema_version": 2, "agent_id": AGENT, **live, "previous_version": history[0]["version"] if history else None,
        "rolled_back_by": None, "history": history,
        "canary": canary and {**canary, "share": 0.1, "first_day": "2026-03-04", "started_at": "2026-03-03T01:00:00"},
        "canary_history": [],
    }, "the test's manifest")  # fmt: skip


def test_the_aliases_follow_the_manifest_through_deploy_canary_and_rollback(settings, mlflow_python, mlflow_server):
    v1 = _entry("20260301-lightgbm-111111111111", "1", "scheduled__2026-03-01T00:00:00+00:00")
    v2 = _entry("20260302-lightgbm-222222222222", "2", "scheduled__2026-03-02T00:00:00+00:00")
    v3 = _entry("20260303-lightgbm-333333333333", "3", "scheduled__2026-03-03T00:00:00+00:00")

    steps = [
        ("first deploy", _manifest(v1, [])),
        ("deploy", _manifest(v2, [v1])),
        ("canary start", _manifest(v2, [v1], canary=v3)),
        ("canary aborted", _manifest(v2, [v1])),
    ]
    for step, manifest in steps:
        outcome = move_aliases(settings, AGENT, manifest, MODELS)
        assert outcome.ok, (step, outcome.error)
    after_deploy = mlflow_says(mlflow_python, mlflow_server, "registry", f"agent-retraining-{AGENT}")
    champion = after_deploy["champion"]
    assert (champion["version"], champion["source"]) == ("2", v2["artifact_uri"])
    assert champion["tags"]["manifest_version"] == v2["version"]
    assert champion["tags"]["sha256"] == "2" * 64
    assert after_deploy["challenger"] is None
    assert after_deploy["versions"] == 3

    rolled_back = _manifest({**v1, "run_id": "manual__rollback", "deployed_by": "rollback"},
                            [{**v2, "rolled_back_by": "manual__rollback"}, v1])  # fmt: skip
    outcome = move_aliases(settings, AGENT, rolled_back, MODELS)
    assert outcome.ok, outcome.error
    assert outcome.details["champion"] == {"manifest_version": v1["version"], "mlflow_version": "1"}
    after_rollback = mlflow_says(mlflow_python, mlflow_server, "registry", f"agent-retraining-{AGENT}")
    assert after_rollback["champion"]["version"] == "1"  # v1's own registry version, not a new one
    assert after_rollback["champion"]["tags"]["manifest_version"] == v1["version"]
    assert after_rollback["versions"] == 3


def test_a_canary_is_the_challenger(settings, mlflow_python, mlflow_server):
    agent = "canary-bot"
    live = _entry("20260302-lightgbm-444444444444", "4", "scheduled__2026-03-02T00:00:00+00:00")
    canary = _entry("20260303-lightgbm-555555555555", "5", "scheduled__2026-03-03T00:00:00+00:00")
    outcome = move_aliases(settings, agent, _manifest(live, [], canary=canary), MODELS)
    assert outcome.ok, outcome.error
    seen = mlflow_says(mlflow_python, mlflow_server, "registry", f"agent-retraining-{agent}")
    assert seen["champion"]["tags"]["manifest_version"] == live["version"]
    assert seen["challenger"]["tags"]["manifest_version"] == canary["version"]
    assert seen["versions"] == 2

    unversioned = move_aliases(settings, agent, {"canary": 3, "artifact_key": "x"}, MODELS)
    assert not unversioned.ok
    assert "a manifest entry without a version cannot be registered" in unversioned.error


def _same_logs(s3, buckets, specs: list, days: list[date]) -> None:
    """The same events under each agent id: their nights see the same data, so their decisions must agree."""
    world = World.for_spec(specs[0], 3)
    for day in days:
        table = day_table(world, day, 700, 3)
        for spec in specs:
            agent_ids = pa.array([spec.agent_id] * len(table))
            write_day(s3, buckets.logs, spec, day, table.set_column(table.column_names.index("agent_id"), "agent_id",
                                                                    agent_ids))  # fmt: skip


def _record(s3, buckets, spec, day: date, dag_run, name: str):
    return read_json(s3, buckets.artifacts, run_prefix(spec.agent_id, day, dag_run.run_id) + name)


def _judged(s3, buckets, spec, day: date, dag_run) -> dict:
    """What a night decided, without what names the agent or the run."""
    decision = _record(s3, buckets, spec, day, dag_run, "decision.json")
    return {"deploy": decision["deploy"], "winner": decision["winner"]["candidate"],
            "rules": [(r["rule"], r["passed"], r["detail"]) for r in decision["rules"]]}  # fmt: skip


def test_real_nights_and_a_rollback_move_mlflow_and_an_unreachable_mlflow_changes_no_decision(
    mlflow_server, mlflow_python, install, s3, buckets, support_bot, monkeypatch
):
    from agent_retraining.dev.dag_runner import run_night

    # A lax gate on the last night, so that it deploys a second version to roll back from.
    gate = support_bot.gate.model_dump()
    lax = {**gate, "policy_value_margin": 1.0, "policy_value": {**gate["policy_value"], "min_difference": -1.0}}
    training = {**support_bot.training.model_dump(), "window_days": 3, "lightgbm_search": []}
    off, down, up = (install(spec_variant(support_bot, agent_id=f"mlflow-{name}", training=training, gate=lax,
                                          candidates=["logistic_regression", "lightgbm"]))
                     for name in ("off", "down", "up"))  # fmt: skip
    days = [date(2026, 3, 1) + timedelta(days=n) for n in range(4)]
    _same_logs(s3, buckets, [off, down, up], days)

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    without, _ = run_night(off, days[2])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    unreachable, report = run_night(down, days[2])
    assert (without.state, unreachable.state) == ("success", "success")
    assert _judged(s3, buckets, down, days[2], unreachable) == _judged(s3, buckets, off, days[2], without)
    assert report["outcome"] == "deployed"
    told = _record(s3, buckets, down, days[2], unreachable, "mlflow.json")
    assert [(t["what"], t["ok"]) for t in told] == [("record_night", False), ("move_aliases", False)]

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    run_night(up, days[2])
    _, report = run_night(up, days[3])
    assert report["outcome"] == "deployed"
    manifest, _ = read_manifest(s3, buckets, up.agent_id)
    runs = mlflow_says(mlflow_python, mlflow_server, "runs", f"agent-retraining/{up.agent_id}")
    assert {name for name in runs if name.split()[1] != "champion"} == {
        f"{day} {candidate}" for day in days[2:] for candidate in ("logistic_regression", "lightgbm")
    }
    assert runs[f"{days[3]} {report['winner']}"]["tags"]["deployed"] == "true"
    registry = mlflow_says(mlflow_python, mlflow_server, "registry", f"agent-retraining-{up.agent_id}")
    assert registry["champion"]["tags"]["manifest_version"] == manifest["version"]

    rollback = load_dag_file("rollback_model.py").rollback_model_dag
    rolled = rollback.test(run_conf={"agent_id": up.agent_id, "target": "previous", "reason": "mlflow round trip"})
    assert rolled.state == "success"
    back, _ = read_manifest(s3, buckets, up.agent_id)
    assert back["version"] == manifest["previous_version"]
    registry = mlflow_says(mlflow_python, mlflow_server, "registry", f"agent-retraining-{up.agent_id}")
    assert registry["champion"]["tags"]["manifest_version"] == back["version"]
    assert registry["versions"] == 2
