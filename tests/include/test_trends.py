"""An agent's trend is gathered from what the pipeline stored (validated days, nights' pointers, the manifest), on the
real local S3 server, and a record that is broken or missing is a gap, never an error.

`month_of_history` writes four weeks of an agent's life through the project's storage functions, as the DAGs
would have left them; the browser test (tests/e2e/test_ui_plugin.py) shows the same history on the page.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta

import pytest

from agent_retraining.contract import latest_run_key, manifest_key, run_prefix, validated_day_prefix
from agent_retraining.storage import delete, put_bytes, write_json
from agent_retraining.views.overview import timeline
from agent_retraining.views.trends import collect, night_of
from tests.conftest import spec_variant

HOSTILE_VERSION = "<script>alert('version')</script>"


def write_day(s3, buckets, agent_id: str, day: date, by_version: list[dict], passed: bool = True,
              fingerprint: str = "f0", judged_at: str | None = None) -> None:  # fmt: skip
    """A validated day's verdict as validate_day stores it, as far as a trend reads it."""
    write_json(s3, buckets.artifacts, validated_day_prefix(agent_id, day, fingerprint) + "verdict.json", {
        "agent_id": agent_id, "day": day.isoformat(), "passed": passed, "by_version": by_version,
        "rows": sum(e["rows"] for e in by_version),
        "judged_at": judged_at or datetime.combine(day + timedelta(days=1), time(0, 5), UTC).isoformat(),
    })  # fmt: skip


def write_night(s3, buckets, agent_id: str, day: date, run_id: str, outcome: str) -> None:
    """The pointer to a night's latest run as the report task writes it."""
    run_dir = run_prefix(agent_id, day, run_id)
    write_json(s3, buckets.artifacts, latest_run_key(agent_id, day), {
        "run_id": run_id, "run_dir": run_dir, "report_key": run_dir + "report.json", "outcome": outcome,
        "written_at": datetime.combine(day + timedelta(days=1), time(0, 30), UTC).isoformat(),
    })  # fmt: skip


def acted(version: str | None, rows: int, rate: float) -> dict:
    return {"version": version, "rows": rows, "reward_sum": rows * rate}


def _at(day: date, hour: int = 0, minute: int = 30) -> str:
    return datetime.combine(day, time(hour, minute), UTC).isoformat()


def _entry(version: str, run_id: str, deployed_at: str, deployed_by: str, value: float, ci: list | None) -> dict:
    metrics = {"roc_auc": 0.8, "policy_value": value} | ({"policy_value_ci": ci} if ci else {})
    return {"version": version, "framework": "sklearn", "artifact_key": f"models/{version}", "sha256": "0" * 64,
            "params": {}, "encoding_id": "e", "trained_on": {"first": "2026-01-01", "last": "2026-01-07"},
            "metrics": metrics, "run_id": run_id, "deployed_at": deployed_at, "deployed_by": deployed_by,
            "reason": f"{deployed_by} of {version}"}  # fmt: skip


def month_of_history(s3, buckets, spec, last: date) -> dict:
    """Four weeks up to `last`: a week of the logging policy; deploys of v1, v2 and v4 by their nights; v3 as a
    canary, promoted by the canary DAG; v4 rolled back to v3 by hand the day after it did worse; a night the data
    gate refused (every reward 0), one that failed, one day whose verdict is not JSON and a logged version that is
    `<script>`. Writes the manifest too; returns it with what a trend of 28 days or more must show."""
    agent, first = spec.agent_id, last - timedelta(days=27)
    day = [first + timedelta(days=n) for n in range(28)]
    v1, v2, v3, v4 = (f"{d:%Y%m%d}-logistic_regression-{n}" for n, d in enumerate((day[6], day[13], day[17], day[23])))
    run = {n: f"scheduled__{day[n]}T00:00:00+00:00" for n in range(6, 28)}
    promotion, rollback = _at(day[22], 0, 40), _at(day[25], 9, 15)
    for n in range(28):
        if n < 7:
            by_version = [acted(None, 800, 0.5 + 0.01 * math.sin(n))]
        elif n < 14:
            by_version = [acted(v1, 800, 0.0 if n == 9 else 0.58)]  # the 9th: a broken reward join
        elif n < 18:
            by_version = [acted(v2, 800, 0.62 + 0.005 * (n % 3))]
        elif n < 22:
            by_version = [acted(v2, 640, 0.62), acted(v3, 160, 0.67)] + (
                [acted(HOSTILE_VERSION, 40, 0.5)] if n == 20 else []
            )
        else:
            by_version = {24: [acted(v4, 800, 0.55)], 25: [acted(v4, 300, 0.55), acted(v3, 500, 0.66)]}.get(
                n, [acted(v3, 800, 0.66)]
            )
        if n == 19:  # the day's one verdict, unreadable
            put_bytes(s3, buckets.artifacts, validated_day_prefix(agent, day[n], "f0") + "verdict.json", b"{not json")
        else:
            write_day(s3, buckets, agent, day[n], by_version, passed=n != 9)
    for n, name in run.items():
        outcome = {6: "deployed", 9: "data rejected", 13: "deployed", 17: "canary started", 23: "deployed",
                   26: "failed before decision finished"}.get(n, "kept champion")  # fmt: skip
        write_night(s3, buckets, agent, day[n], name, outcome)
    canary_run = f"scheduled__{day[21]}T00:00:00+00:00"
    entries = [
        _entry(v4, run[23], _at(day[24]), "retraining", 0.70, [0.66, 0.74]) | {"rolled_back_by": "manual__rollback"},
        _entry(v3, canary_run, promotion, "canary", 0.68, None),
        _entry(v2, run[13], _at(day[14]), "retraining", 0.64, [0.60, 0.68]),
        _entry(v1, run[6], _at(day[7]), "retraining", 0.60, [0.56, 0.64]),
    ]
    manifest = _entry(v3, "manual__rollback", rollback, "rollback", 0.68, None) | {
        "schema_version": 2, "agent_id": agent, "history": entries, "canary": None,
        "canary_history": [
            {"event": "promoted", "version": v3, "run_id": canary_run, "reason": "the canary earned more",
             "at": promotion},
            {"event": "started", "version": v3, "run_id": run[17], "reason": "passed the gate", "at": _at(day[18])},
        ],
    }  # fmt: skip
    write_json(s3, buckets.models, manifest_key(agent), manifest)
    return {"manifest": manifest, "versions": (v1, v2, v3, v4), "days": day, "runs": run, "markers": 6, "judged": 4,
            "nights": len(run), "points": 7 + 7 + 7 + 3 + 5 + 1 + 2}  # fmt: skip


@pytest.fixture
def spec(support_bot, request):
    return spec_variant(support_bot, agent_id=f"trends-{request.node.name[5:30].replace('_', '-')}")


LAST = date(2026, 2, 28)


def _collect(s3, buckets, spec, manifest, **arguments):
    return collect(s3, buckets, spec, manifest, timeline(spec, manifest, []), **arguments)


def test_a_month_shows_each_versions_days_its_releases_their_judged_values_and_the_nights(s3, buckets, spec):
    history = month_of_history(s3, buckets, spec, LAST)
    v1, v2, v3, v4 = history["versions"]
    trends = _collect(s3, buckets, spec, history["manifest"])

    assert (trends.first, trends.last) == (LAST - timedelta(days=29), LAST)  # the newest day with records
    assert [(s.version, s.canary, len(s.points)) for s in trends.series] == [
        (None, False, 7), (v1, False, 7), (v2, False, 7), (v3, True, 3), (HOSTILE_VERSION, False, 1),
        (v3, False, 5), (v4, False, 2),
    ]  # fmt: skip
    assert sum(len(s.points) for s in trends.series) == history["points"]
    refused = [p for s in trends.series for p in s.points if p.refused]
    assert [(p.day, p.rate) for p in refused] == [(history["days"][9], 0.0)]
    canary = trends.series[3].points
    assert [p.day for p in canary] == [history["days"][n] for n in (18, 20, 21)]  # the 19th: not JSON, no point
    assert canary[0].rows == 160
    assert canary[0].rate == pytest.approx(0.67)

    # each night's release at the end of the day it judged; the canary DAG's and the rollback at their own time
    day = history["days"]
    assert [(m.kind, m.version, m.at) for m in trends.markers] == [
        ("deploy", v1, datetime.combine(day[7], time(), UTC)),
        ("deploy", v2, datetime.combine(day[14], time(), UTC)),
        ("canary started", v3, datetime.combine(day[18], time(), UTC)),
        ("canary promoted", v3, datetime.combine(day[22], time(0, 40), UTC)),
        ("deploy", v4, datetime.combine(day[24], time(), UTC)),
        ("rollback", v3, datetime.combine(day[25], time(9, 15), UTC)),
    ]
    assert [m.dag_id for m in trends.markers] == [spec.dag_id] * 3 + [spec.canary_dag_id, spec.dag_id, "rollback_model"]
    assert [(j.version, j.value, j.ci) for j in trends.judged] == [
        (v1, 0.60, (0.56, 0.64)), (v2, 0.64, (0.60, 0.68)), (v3, 0.68, None), (v4, 0.70, (0.66, 0.74)),
    ]  # fmt: skip
    assert len(trends.nights) == history["nights"]
    kinds = {n.day: n.kind for n in trends.nights}
    assert (kinds[day[6]], kinds[day[9]], kinds[day[10]], kinds[day[26]]) == ("deployed", "refused", "kept", "failed")
    assert kinds[day[17]] == "deployed"  # a canary started is a release
    assert trends.end == datetime.combine(LAST + timedelta(days=1), time(), UTC)
    assert not trends.graded


def test_at_most_the_days_asked_for_are_read_and_an_older_report_shows_the_trend_up_to_its_night(s3, buckets, spec):
    history = month_of_history(s3, buckets, spec, LAST)
    short = _collect(s3, buckets, spec_variant(spec, trend_days=7), history["manifest"])
    assert short.first == LAST - timedelta(days=6)
    assert {p.day for s in short.series for p in s.points} == {LAST - timedelta(days=n) for n in range(7)}
    assert [m.kind for m in short.markers] == ["canary promoted", "deploy", "rollback"]

    night = history["days"][13]
    tonight = night_of(night, "kept champion: the deploy was not approved or did not run", "manual__tonight")
    then = _collect(s3, buckets, spec, history["manifest"], last=night, tonight=tonight)
    assert then.last == night
    assert then.nights[-1] == tonight  # stands for that night's pointer, not yet written by the run reporting
    assert max(p.day for s in then.series for p in s.points) == night
    # v2's deploy was that night's own run's: its run is not tonight's, so it is drawn by its time, the morning after
    assert [m.kind for m in then.markers] == ["deploy", "deploy"]
    assert then.end == datetime.combine(night + timedelta(days=1), time(0, 30), UTC)


def test_broken_and_odd_records_are_gaps_not_errors(s3, buckets, spec):
    agent, day = spec.agent_id, date(2026, 1, 10)
    odd = (b'{"judged_at": "2026-01-11T00:05", "by_version": [{"version": 5, "rows": 10, "reward_sum": 1}, '
           b'{"version": "zero", "rows": 0, "reward_sum": 0}, {"version": "text", "rows": "ten", "reward_sum": 1}, '
           b'{"version": "flag", "rows": true, "reward_sum": 1}, {"version": "big", "rows": 10, "reward_sum": 1e999}, '
           b'{"version": "nan", "rows": 10, "reward_sum": NaN}, {"version": "over", "rows": 10, "reward_sum": 11}, '
           b'{"version": "under", "rows": 10, "reward_sum": -1e300}, "not an entry", '
           b'{"version": "fine", "rows": 10, "reward_sum": 3}]}')  # fmt: skip
    put_bytes(s3, buckets.artifacts, validated_day_prefix(agent, day, "f0") + "verdict.json", odd)
    write_day(s3, buckets, agent, day, [acted("older", 10, 0.1)], fingerprint="f-older", judged_at="2026-01-11T00:00")
    put_bytes(s3, buckets.artifacts, validated_day_prefix(agent, day - timedelta(days=1), "f0") + "verdict.json",
              b"\xff\xfe not utf-8")  # fmt: skip
    write_json(s3, buckets.artifacts, validated_day_prefix(agent, day - timedelta(days=2), "f0") + "verdict.json", [])
    write_json(s3, buckets.artifacts, latest_run_key(agent, day), ["not", "a", "pointer"])
    write_json(s3, buckets.artifacts, latest_run_key(agent, day - timedelta(days=1)), {"run_id": 7, "outcome": "x"})
    manifest = _entry("v9", "manual__x", "not a time", "retraining", float("inf"), None) | {  # no history
        "canary_history": [{"event": "started"}, {"event": "promoted", "version": ["v9"], "at": 5, "run_id": None}],
    }

    trends = _collect(s3, buckets, spec, manifest)
    assert [(s.version, [p.rate for p in s.points]) for s in trends.series] == [("fine", [pytest.approx(0.3)])]
    assert (trends.markers, trends.judged, trends.nights) == ((), (), ())
    assert _collect(s3, buckets, spec, None).series == trends.series


def test_a_folder_whose_records_are_gone_does_not_move_the_axis_and_no_history_is_none(s3, buckets, spec):
    assert _collect(s3, buckets, spec, None) is None
    write_day(s3, buckets, spec.agent_id, LAST, [acted(None, 10, 0.5)])
    gone = validated_day_prefix(spec.agent_id, LAST + timedelta(days=3), "f0") + "verdict.json"
    write_json(s3, buckets.artifacts, gone, {})
    delete(s3, buckets.artifacts, gone)  # SeaweedFS still lists the folder
    assert _collect(s3, buckets, spec, None).last == LAST


def test_a_graded_agent_says_its_rates_are_scaled(s3, buckets, spec):
    from tests.include.test_rewards import _graded

    graded = _graded(spec)
    write_day(s3, buckets, graded.agent_id, LAST, [acted(None, 10, 0.75)])
    assert _collect(s3, buckets, graded, None).graded
