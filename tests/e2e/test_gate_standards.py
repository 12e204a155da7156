"""The gate's numbers mean the same at every reward rate, through real DAG runs on the local S3 server.

- A broken reward join (every reward 0) is refused for an agent whose rewards are rare (0.4%, days of 1,400
  events) as for one whose rewards are common (40%); so is a join that doubles every reward.
- Every candidate is judged by every rule: when the best by the primary metric fails a floor, the best one
  that passes is deployed; a champion that fails today's floors is named, and the spec's `failing_champion`
  says whether it is replaced or kept with an alert (a red run).
"""

from dataclasses import replace
from datetime import date, timedelta

import pytest

from agent_retraining.dev.scenarios import scenario
from agent_retraining.dev.simulate import World, day_table, write_day
from agent_retraining.manifest import read_manifest
from agent_retraining.storage import get_bytes, read_json
from tests.conftest import spec_variant

START = date(2026, 6, 1)
WINDOW_DAYS = 7


def nightly(spec, day: date):
    from agent_retraining.dev.dag_runner import run_night  # the night `make retrain` runs

    return run_night(spec, day)


def run_dir_of(report: dict) -> str:
    return report["report_key"].removesuffix("report.json")


def reward_rate_checks_of(s3, buckets, report: dict, day: date) -> list[dict]:
    validation = read_json(s3, buckets.artifacts, run_dir_of(report) + "validation.json")
    return [c for c in validation["checks"] if c["rule"] == "reward_rate" and c["day"] == day.isoformat()]


@pytest.mark.parametrize(("agent_id", "rate", "events"), [("rare-bot", 0.004, 1400), ("common-bot", 0.40, 1400)])
def test_a_broken_reward_join_is_refused_at_a_rare_and_a_common_rate(install, s3, buckets, support_bot, agent_id,
                                                                      rate, events):  # fmt: skip
    spec = install(spec_variant(support_bot, agent_id=agent_id))
    world = World.for_spec(spec, 4).with_reward_rate(rate)
    days = [START + timedelta(days=n) for n in range(WINDOW_DAYS + 1)]
    for day in days[:-1]:
        write_day(s3, buckets.logs, spec, day, day_table(world, day, events, 4))
    broken = day_table(world, days[-1], events, 4)
    broken = broken.set_column(broken.schema.get_field_index("reward"), "reward", [[0.0] * events])
    write_day(s3, buckets.logs, spec, days[-1], broken)

    dag_run, report = nightly(spec, days[-1])
    assert dag_run.state == "failed"
    assert report["outcome"] == "data rejected"
    (check,) = reward_rate_checks_of(s3, buckets, report, days[-1])
    assert not check["success"]
    assert check["tier"] == "block"
    assert f"reward rate of the logging policy 0.0000 (0 of {events:,}) against" in check["message"]
    assert "on its 6 earlier usable day(s); Fisher's exact test" in check["message"]
    assert any("[reward_rate]" in failure for failure in report["validation"]["failures"])
    assert read_manifest(s3, buckets, spec.agent_id) == (None, None)  # nothing trained, nothing deployed
    # the day before it, an ordinary day of the same agent, passed the same rule
    (ordinary,) = read_json(s3, buckets.artifacts, run_dir_of(report) + "validation.json")["days"][-2:-1]
    assert ordinary["usable"]


def test_a_join_that_doubles_every_reward_without_a_deploy_is_refused(install, s3, buckets, support_bot):
    spec = install(spec_variant(support_bot, agent_id="doubled-bot"))
    world = World.for_spec(spec, 6).with_reward_rate(0.4)
    days = [START + timedelta(days=n) for n in range(WINDOW_DAYS)]
    for day in days[:-1]:
        write_day(s3, buckets.logs, spec, day, day_table(world, day, 1400, 6))
    write_day(s3, buckets.logs, spec, days[-1], day_table(world.with_reward_rate(0.8), days[-1], 1400, 6))

    dag_run, report = nightly(spec, days[-1])
    assert (dag_run.state, report["outcome"]) == ("failed", "data rejected")
    (check,) = reward_rate_checks_of(s3, buckets, report, days[-1])
    assert not check["success"]
    assert check["observed"] > 1.6 * check["reference"]


def test_the_best_candidate_that_passes_is_deployed_and_a_failing_champion_is_named(install, s3, buckets,
                                                                                    support_bot):  # fmt: skip
    """LightGBM ranks first by ROC AUC in a world of strong interactions, but its weighting of positive rewards
    makes it predict far too high: it fails the calibration floor, and the logistic regression is deployed.
    The next night the floor on ROC AUC sits between the two: the champion (the regression) fails it. With
    `failing_champion: alert` and no candidate passing, nothing moves and the run ends red; with `replace` and
    LightGBM calibrated again, LightGBM replaces it."""
    gate = support_bot.gate.model_dump()
    training = {**support_bot.training.model_dump(), "window_days": 4, "lightgbm_search": [],
                "hyperparameters": {"lightgbm": {"scale_pos_weight": 8.0}}}  # fmt: skip
    spec = install(spec_variant(support_bot, agent_id="floors-bot", candidates=["lightgbm", "logistic_regression"],
                                training=training))  # fmt: skip
    base = scenario("stationary", spec, seed=8, days=2).base
    world = replace(base, pair_weights=base.pair_weights * 2.5)  # products of signals no linear model can fit
    days = [START + timedelta(days=n) for n in range(5)]
    for day in days:
        write_day(s3, buckets.logs, spec, day, day_table(world, day, 3000, 8))

    dag_run, first = nightly(spec, days[3])
    assert dag_run.state == "success", first["verdict"]
    decision = read_json(s3, buckets.artifacts, run_dir_of(first) + "decision.json")
    verdicts = {c["candidate"]: c for c in decision["candidates"]}
    assert [c["candidate"] for c in decision["candidates"]] == ["lightgbm", "logistic_regression"]  # by ROC AUC
    assert [r["rule"] for r in verdicts["lightgbm"]["failed"]] == ["floor_calibration_error"]
    assert verdicts["logistic_regression"]["passed"]
    assert (first["outcome"], decision["winner"]["candidate"]) == ("deployed", "logistic_regression")
    assert "better by roc_auc but failing: lightgbm (floor_calibration_error)" in decision["reason"]
    champion = read_manifest(s3, buckets, spec.agent_id)[0]["version"]
    page = get_bytes(s3, buckets.artifacts, first["report_html_key"])[0].decode()
    verdicts_table = page[page.index("<h2>Each candidate's verdict</h2>") :]
    assert "floor_calibration_error: calibration_error" in verdicts_table
    assert "<h3>Reward rate by acting version</h3>" in page

    auc = {name: decision["metrics"][name]["roc_auc"] for name in verdicts}
    between = (auc["lightgbm"] + auc["logistic_regression"]) / 2
    assert auc["lightgbm"] - auc["logistic_regression"] > 0.04  # the premise: the regression cannot fit this world
    floors = {**gate["floors"], "min_roc_auc": round(between, 4)}
    alerting = install(spec_variant(spec, gate={**gate, "floors": floors, "failing_champion": "alert"}))
    _, etag = read_manifest(s3, buckets, spec.agent_id)
    dag_run, alerted = nightly(alerting, days[4])
    decision = read_json(s3, buckets.artifacts, run_dir_of(alerted) + "decision.json")
    assert dag_run.state == "failed"
    assert alerted["outcome"] == "alert: the champion fails today's floors and no candidate passed"
    assert decision["champion"]["fails_floors"]
    assert [r["rule"] for r in decision["champion"]["floors"] if not r["passed"]] == ["floor_roc_auc"]
    assert f"the champion {champion} itself fails today's floors (floor_roc_auc" in decision["reason"]
    assert "failing_champion is alert" in decision["reason"]
    assert read_manifest(s3, buckets, spec.agent_id)[1] == etag

    plain = {**training, "hyperparameters": {}}  # LightGBM calibrated again
    replacing = install(spec_variant(alerting, training=plain,
                                     gate={**alerting.gate.model_dump(), "failing_champion": "replace"}))  # fmt: skip
    dag_run, replaced = nightly(replacing, days[4])
    decision = read_json(s3, buckets.artifacts, run_dir_of(replaced) + "decision.json")
    assert dag_run.state == "success", replaced["verdict"]
    assert (replaced["outcome"], decision["winner"]["candidate"]) == ("deployed", "lightgbm")
    assert decision["champion"]["fails_floors"]
    assert f"the champion {champion} itself fails today's floors" in decision["reason"]
    assert not [r for r in decision["rules"] if r["rule"].startswith("no_regression")]
    assert read_manifest(s3, buckets, spec.agent_id)[0]["previous_version"] == champion
