"""The trend drawn as inline SVG: one element per point, release, judged value and night, each where the time axis
puts it, links to the runs, and every text from the records escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, time, timedelta

from agent_retraining.views.notifications import run_url
from agent_retraining.views.report_page import render as render_report
from agent_retraining.views.trend_chart import BOTTOM, LEFT, RIGHT, TOP, WIDTH, trend_chart
from agent_retraining.views.trends import JudgedValue, Marker, Point, Series, Trends, night_of

SVG = "{http://www.w3.org/2000/svg}"
FIRST, LAST = date(2026, 2, 1), date(2026, 2, 28)
HOSTILE = "<script>alert('x')</script>"


def _points(version_days: range, rate: float, refused: tuple = ()) -> tuple[Point, ...]:
    return tuple(Point(FIRST + timedelta(days=n), 100, rate + n / 1000, n in refused) for n in version_days)


def _at(n: int, hour: int = 0) -> datetime:
    return datetime.combine(FIRST + timedelta(days=n), time(hour), UTC)


def _trends(graded: bool = False, **changes) -> Trends:
    fields = {
        "agent_id": "bot", "dag_id": "retrain_bot", "graded": graded, "first": FIRST, "last": LAST,
        "end": _at(28, 9),
        "series": (Series(None, False, _points(range(7), 0.5)),
                   Series("v1", False, _points(range(7, 20), 0.6, refused=(9,))),
                   Series(HOSTILE, True, _points(range(15, 20), 0.65)),
                   Series("v1", False, _points(range(22, 28), 0.6))),
        "markers": (Marker(_at(7), "deploy", "v1", "scheduled__7", "retrain_bot", "passed <b>the</b> gate"),
                    Marker(_at(15), "canary started", HOSTILE, "scheduled__15", "retrain_bot", ""),
                    Marker(_at(20, 1), "canary aborted", HOSTILE, "scheduled__c", "canary_bot", "worse"),
                    Marker(_at(21, 9), "rollback", "v0", None, "rollback_model", "by hand"),
                    Marker(_at(28, 9), "canary promoted", "v2", "scheduled__p", "canary_bot", "better")),
        "judged": (JudgedValue(_at(7), "v1", 0.62, (0.58, 0.66)), JudgedValue(_at(15), HOSTILE, 0.7, None)),
        "nights": tuple(night_of(FIRST + timedelta(days=n), outcome, f"scheduled__{n}")
                        for n, outcome in ((6, "deployed"), (9, "data rejected"), (10, "kept champion"),
                                           (11, "failed before evaluate finished"), (14, "canary started"))),
    }  # fmt: skip
    return Trends(**(fields | changes))


def _drawn(trends: Trends) -> ET.Element:
    return ET.fromstring(str(trend_chart(trends)))


def _with_class(svg: ET.Element, tag: str, name: str) -> list[ET.Element]:
    return [e for e in svg.iter(SVG + tag) if name in (e.get("class") or "").split()]


def test_every_point_release_judged_value_and_night_is_drawn_once_inside_the_plot():
    trends = _trends()
    svg = _drawn(trends)

    points = _with_class(svg, "circle", "point")
    assert len(points) == sum(len(s.points) for s in trends.series) == 7 + 13 + 5 + 6
    assert len(_with_class(svg, "circle", "refused")) == 1
    assert all(LEFT <= float(p.get("cx")) <= WIDTH - RIGHT and TOP <= float(p.get("cy")) <= BOTTOM for p in points)
    assert len(_with_class(svg, "g", "marker")) == 5
    assert [g.get("class") for g in _with_class(svg, "g", "marker")] == [
        "marker deploy", "marker canary-started", "marker canary-aborted", "marker rollback", "marker canary-promoted",
    ]  # fmt: skip
    assert len(_with_class(svg, "g", "judged")) == 2
    nights = _with_class(svg, "rect", "night")
    assert [n.get("class") for n in nights] == ["night deployed", "night refused", "night kept", "night failed",
                                                "night deployed"]  # fmt: skip
    # one line per run of consecutive days; the refused day (9) is off the line, splitting v1's days in two
    assert len(list(svg.iter(SVG + "polyline"))) == 4 + 1


def test_the_time_axis_is_shared_a_release_is_drawn_when_it_took_effect_and_a_night_under_its_day():
    trends = _trends()
    svg = _drawn(trends)

    def x(at: datetime) -> float:
        return round(LEFT + (at - _at(0)) / (trends.end - _at(0)) * (WIDTH - LEFT - RIGHT), 1)

    deploy = _with_class(svg, "g", "marker")[0].find(SVG + "line")
    assert float(deploy.get("x1")) == x(_at(7))  # v1 deployed by the night of day 6, acting from day 7
    first_v1 = next(p for p in _with_class(svg, "circle", "point") if "v1 on 2026-02-08" in p.find(SVG + "title").text)
    assert float(first_v1.get("cx")) == x(_at(7, 12))  # a day's rate at its noon
    night = _with_class(svg, "rect", "night")[0]  # the night of day 6: its day's width, less a pixel each side
    assert float(night.get("x")) == x(_at(6)) + 1
    assert abs(float(night.get("x")) + float(night.get("width")) - (x(_at(7)) - 1)) < 0.2
    promoted = _with_class(svg, "g", "marker")[-1].find(SVG + "line")
    assert float(promoted.get("x1")) == WIDTH - RIGHT  # the axis ends at the last release, after the last day


def test_runs_are_linked_and_every_text_from_the_records_is_escaped():
    trends = _trends()
    html = str(trend_chart(trends))
    assert "<script>" not in html
    assert "<b>" not in html
    assert html.count("&lt;script&gt;") >= 4  # the series, its legend entry, the canary's markers, its judged value
    svg = ET.fromstring(html)
    links = [a.get("href") for a in svg.iter(SVG + "a")]
    nights = [run_url("..", "retrain_bot", n.run_id) for n in trends.nights]
    releases = [run_url("..", m.dag_id, m.run_id) for m in trends.markers if m.run_id]
    assert sorted(links) == sorted(nights + releases)
    assert {a.get("target") for a in svg.iter(SVG + "a")} == {"_top"}
    titles = [t.text for t in svg.iter(SVG + "title")]
    assert "deploy: v1 (2026-02-08 00:00 UTC, run scheduled__7): passed <b>the</b> gate" in titles
    assert f"{HOSTILE} judged at 0.7000 when released" in titles
    assert "v1 judged at 0.6200 when released, 95% interval [0.5800, 0.6600]" in titles
    assert "night of 2026-02-10: data rejected" in titles


def test_an_estimate_beyond_the_rates_is_clipped_to_the_plot():
    wild = (JudgedValue(_at(7), "v1", 1e300, (-1e300, 1e300)), JudgedValue(_at(8), "v1", -3.0, None))
    svg = _drawn(_trends(judged=wild))
    lines = [line for g in _with_class(svg, "g", "judged") for line in g.iter(SVG + "line")]
    ys = [float(line.get(k)) for line in lines for k in ("y1", "y2")]
    assert len(ys) == 3 * 2  # two bars, one interval
    assert all(TOP <= y <= BOTTOM for y in ys)
    assert [t.text for t in svg.iter(SVG + "text")][0] == "0.0"  # the value axis from the rates' own [0, 1]


def test_the_axis_says_when_rates_are_scaled_and_an_empty_trend_still_draws():
    def label(svg: ET.Element) -> str:
        return next(t.text for t in svg.iter(SVG + "text") if (t.text or "").startswith("reward rate"))

    assert label(_drawn(_trends())) == "reward rate"
    assert label(_drawn(_trends(graded=True))) == "reward rate (scaled to [0, 1])"
    empty = _drawn(_trends(series=(), markers=(), judged=(), nights=(), end=_at(28)))
    assert not _with_class(empty, "circle", "point")
    assert len(list(empty.iter(SVG + "svg"))) == 1


def test_the_run_report_carries_the_trend_up_to_its_night():
    report = {"agent_id": "bot", "day": str(LAST), "run_id": "scheduled__27", "outcome": "kept champion",
              "live_version": "v1"}  # fmt: skip
    page = render_report(report, "bot: kept champion", "a bot", None, None, _trends())
    assert "The agent up to this night" in page
    assert page.count('<svg class="trend"') == 1
    assert "&lt;script&gt;" in page
    assert HOSTILE not in page
