"""An agent's trend (trends.py) drawn as inline SVG, element by element, on the server.

Written by hand rather than by matplotlib because the chart is made to be read in the browser: every point, release
and night carries its own tooltip (`<title>`), each night and release links to its run in Airflow, and each drawn
thing has a class a test can count. Every text comes in through `Markup.format`, which escapes it, so a version or
reason from the records (`<script>`) is text. No script, no font or style from elsewhere: the page's own font.

One time axis for all of it: a day's reward rate at the middle of its day, a release at the moment it took effect,
each night's outcome in the strip under the day it judged.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta

from markupsafe import Markup

from agent_retraining.views.pages import joined, run_link
from agent_retraining.views.trends import Series, Trends

WIDTH, LEFT, RIGHT, TOP, PLOT_HEIGHT = 960, 64, 16, 12, 240
BOTTOM = TOP + PLOT_HEIGHT
STRIP_TOP, STRIP_HEIGHT = BOTTOM + 24, 14
LEGEND_TOP, LEGEND_ROW, LEGEND_COLUMNS, LEGEND_TEXT = STRIP_TOP + STRIP_HEIGHT + 22, 18, 3, 44
LOGGING_COLOUR = "#444"
# the versions' colours leave green, red and purple to the releases, grey to the logging policy
PALETTE = ("#1f77b4", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#393b79")
# kind: (colour, dashes of its line, its symbol at the top of the plot as a path around (0, 0))
MARKERS = {
    "deploy": ("#137333", "", "M-5,-4 L5,-4 L0,4 Z"),
    "rollback": ("#b00020", "", "M-4,-4 L4,-4 L4,4 L-4,4 Z"),
    "canary started": ("#6a1b9a", "4 3", "M0,-5 L5,0 L0,5 L-5,0 Z"),
    "canary promoted": ("#6a1b9a", "", "M0,-5 L5,0 L0,5 L-5,0 Z"),
    "canary aborted": ("#e65100", "4 3", "M-4,-4 L4,4 M4,-4 L-4,4"),
}
NIGHTS = {"deployed": "#137333", "kept": "#9e9e9e", "refused": "#e65100", "failed": "#b00020"}


def _nice_step(span: float) -> float:
    """A step of 1, 2 or 5 times a power of ten giving about four intervals over `span`."""
    rough = span / 4
    power = 10 ** math.floor(math.log10(rough))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= rough)


class _Scale:
    """Where a moment and a value fall on the canvas."""

    def __init__(self, trends: Trends):
        self.start = datetime.combine(trends.first, time(), UTC)
        self.days = (trends.end - self.start) / timedelta(days=1)
        values = [p.rate for s in trends.series for p in s.points]
        # an estimate or its interval may pass the rates' [0, 1]; the plot stops there and clips it
        values += [min(max(v, 0.0), 1.0) for j in trends.judged for v in (j.value, *(j.ci or ()))]
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        self.step = _nice_step(max(high - low, 0.02))
        self.low = math.floor(low / self.step) * self.step
        self.high = max(math.ceil(high / self.step) * self.step, self.low + self.step)

    def x(self, at: datetime | date) -> float:
        at = at if isinstance(at, datetime) else datetime.combine(at, time(), UTC)
        return LEFT + (at - self.start) / timedelta(days=1) / self.days * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return min(max(BOTTOM - (value - self.low) / (self.high - self.low) * PLOT_HEIGHT, TOP), BOTTOM)

    def ticks(self) -> list[float]:
        return [self.low + n * self.step for n in range(round((self.high - self.low) / self.step) + 1)]

    def decimals(self) -> int:
        return max(0, -math.floor(math.log10(self.step)))


def _f(value: float) -> str:
    return f"{value:.1f}"


def _label(version: str | None, canary: bool) -> str:
    name = "logging policy" if version is None else version
    name = name if len(name) <= LEGEND_TEXT else name[: LEGEND_TEXT - 1] + "…"
    return f"{name} (canary arm)" if canary else name


def _colours(trends: Trends) -> dict[str | None, str]:
    """A colour per version, in the order they acted, then those released that never acted in the range."""
    versions = dict.fromkeys([*(s.version for s in trends.series if s.version is not None),
                              *(j.version for j in trends.judged)])  # fmt: skip
    return {None: LOGGING_COLOUR} | {v: PALETTE[n % len(PALETTE)] for n, v in enumerate(versions)}


def _linked(dag_id: str, run_id: str | None, drawn: Markup) -> Markup:
    return run_link(dag_id, run_id, drawn) if run_id else drawn


def _axes(scale: _Scale, trends: Trends) -> Markup:
    """Grid, ticks and labels: a date every week (every day on a short axis), the rate's values."""
    parts = []
    for value in scale.ticks():
        y = _f(scale.y(value))
        parts.append(Markup('<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#e4e4e4"/>'
                            '<text x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>')
                     .format(LEFT, WIDTH - RIGHT, y, y, LEFT - 6, y, f"{value:.{scale.decimals()}f}"))  # fmt: skip
    every = 1 if scale.days <= 10 else 7
    for n in range(0, (trends.last - trends.first).days + 1, every):
        day = trends.first + timedelta(days=n)
        x, middle = _f(scale.x(day)), _f(scale.x(_noon(day)))
        parts.append(Markup('<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#e4e4e4"/>'
                            '<text x="{}" y="{}" text-anchor="middle">{}</text>')
                     .format(x, x, TOP, BOTTOM, middle, BOTTOM + 14, f"{day:%b} {day.day}"))  # fmt: skip
    label = "reward rate (scaled to [0, 1])" if trends.graded else "reward rate"
    parts.append(Markup('<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#bbb"/>'
                        '<text transform="translate(14 {}) rotate(-90)" text-anchor="middle">{}</text>')
                 .format(LEFT, TOP, WIDTH - LEFT - RIGHT, PLOT_HEIGHT, BOTTOM - PLOT_HEIGHT / 2, label))  # fmt: skip
    return joined(*parts)


def _series(scale: _Scale, series: Series, colour: str) -> Markup:
    """A line through the days the version acted one after another; a missing day breaks it, a refused day is an
    open circle off the line."""
    dash = "4 3" if series.canary else ""
    runs: list[list] = []
    for point in series.points:
        if point.refused:
            continue
        if runs and (point.day - runs[-1][-1].day).days == 1:
            runs[-1].append(point)
        else:
            runs.append([point])
    lines = [Markup('<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5" stroke-dasharray="{}"/>')
             .format(" ".join(f"{_f(scale.x(_noon(p.day)))},{_f(scale.y(p.rate))}" for p in run), colour, dash)
             for run in runs if len(run) > 1]  # fmt: skip
    name = _label(series.version, series.canary)
    dots = [Markup('<circle class="point{}" cx="{}" cy="{}" r="2.5" fill="{}" stroke="{}"><title>{}</title></circle>')
            .format(" refused" if p.refused else "", _f(scale.x(_noon(p.day))), _f(scale.y(p.rate)),
                    "white" if p.refused else colour, colour,
                    f"{name} on {p.day}: {p.rate:.4f} over {p.rows:,} events"
                    + (" (the data gate refused this day)" if p.refused else ""))
            for p in series.points]  # fmt: skip
    return Markup('<g class="series">{}</g>').format(joined(*lines, *dots))


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(12), UTC)


def _symbol(kind: str, x: float, y: float) -> Markup:
    colour, _, path = MARKERS[kind]
    fill = "white" if kind == "canary started" else colour
    return Markup('<path d="{}" transform="translate({} {})" fill="{}" stroke="{}" stroke-width="1.5"/>').format(
        path, _f(x), _f(y), fill, colour
    )


def _markers(scale: _Scale, trends: Trends) -> Markup:
    parts = []
    for marker in trends.markers:
        colour, dash, _ = MARKERS[marker.kind]
        x = _f(scale.x(marker.at))
        told = f"{marker.kind}: {marker.version or ''} ({marker.at:%Y-%m-%d %H:%M} UTC, run {marker.run_id})"
        drawn = Markup('<g class="marker {}"><title>{}</title><line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" '
                       'stroke-opacity="0.7" stroke-dasharray="{}"/>{}</g>').format(
            marker.kind.replace(" ", "-"), f"{told}: {marker.reason}" if marker.reason else told, x, x, TOP, BOTTOM,
            colour, dash, _symbol(marker.kind, scale.x(marker.at), TOP + 6))  # fmt: skip
        parts.append(_linked(marker.dag_id, marker.run_id, drawn))
    return joined(*parts)


def _judged(scale: _Scale, trends: Trends, colours: dict[str | None, str]) -> Markup:
    """Each released model's estimated policy value beside its release: a bar, and its 95% interval if known."""
    parts = []
    for judged in trends.judged:
        x, y, colour = scale.x(judged.at) + 6, scale.y(judged.value), colours[judged.version]
        interval = judged.ci and Markup('<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}"/>').format(
            _f(x), _f(x), _f(scale.y(judged.ci[0])), _f(scale.y(judged.ci[1])), colour
        )
        told = f"{judged.version} judged at {judged.value:.4f} when released"
        told += f", 95% interval [{judged.ci[0]:.4f}, {judged.ci[1]:.4f}]" if judged.ci else ""
        parts.append(Markup('<g class="judged"><title>{}</title>{}<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" '
                            'stroke-width="3"/></g>').format(told, interval or "", _f(x - 5), _f(x + 5), _f(y), _f(y),
                                                             colour))  # fmt: skip
    return joined(*parts)


def _nights(scale: _Scale, trends: Trends) -> Markup:
    """One cell per night under the day it judged, coloured by outcome, linked to its run."""
    parts = [Markup('<text x="{}" y="{}" text-anchor="end" dominant-baseline="middle">nights</text>').format(
        LEFT - 6, STRIP_TOP + STRIP_HEIGHT / 2)]  # fmt: skip
    for night in trends.nights:
        left, right = scale.x(night.day) + 1, scale.x(night.day + timedelta(days=1)) - 1
        cell = Markup('<rect class="night {}" x="{}" y="{}" width="{}" height="{}" fill="{}">'
                      "<title>night of {}: {}</title></rect>").format(
            night.kind, _f(left), STRIP_TOP, _f(max(right - left, 1)), STRIP_HEIGHT, NIGHTS[night.kind], night.day,
            night.outcome)  # fmt: skip
        parts.append(_linked(trends.dag_id, night.run_id, cell))
    return joined(*parts)


def _legend(trends: Trends, colours: dict[str | None, str]) -> tuple[Markup, int]:
    """What each colour and symbol means, in columns under the strip; returns it and the height it takes."""
    items = []
    for series in dict.fromkeys((s.version, s.canary) for s in trends.series):
        dash = "4 3" if series[1] else ""
        items.append((Markup('<line x1="0" x2="18" y1="0" y2="0" stroke="{}" stroke-width="2" stroke-dasharray="{}"/>')
                      .format(colours[series[0]], dash), _label(*series)))  # fmt: skip
    for kind in dict.fromkeys(m.kind for m in trends.markers):
        items.append((_symbol(kind, 9, 0), kind))
    if trends.judged:
        items.append((Markup('<line x1="4" x2="14" y1="0" y2="0" stroke="#555" stroke-width="3"/>'),
                      "policy value judged at release (95% interval)"))  # fmt: skip
    for kind in dict.fromkeys(n.kind for n in trends.nights):
        items.append((Markup('<rect x="3" y="-6" width="12" height="12" fill="{}"/>').format(NIGHTS[kind]),
                      f"night: {kind}"))  # fmt: skip
    column = (WIDTH - LEFT) / LEGEND_COLUMNS
    drawn = [Markup('<g transform="translate({} {})">{}<text x="24" y="0" dominant-baseline="middle">{}</text></g>')
             .format(_f(LEFT + (n % LEGEND_COLUMNS) * column), LEGEND_TOP + (n // LEGEND_COLUMNS) * LEGEND_ROW,
                     swatch, text) for n, (swatch, text) in enumerate(items)]  # fmt: skip
    return Markup('<g class="legend">{}</g>').format(joined(*drawn)), math.ceil(len(items) / LEGEND_COLUMNS)


def trend_chart(trends: Trends) -> Markup:
    scale, colours = _Scale(trends), _colours(trends)
    legend, rows = _legend(trends, colours)
    height = LEGEND_TOP + rows * LEGEND_ROW
    title = f"{trends.agent_id}: daily reward rate by acting version, {trends.first} to {trends.last}"
    return Markup(
        '<svg class="trend" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="{}" height="{}" '
        'font-size="11" font-family="system-ui, sans-serif"><title>{}</title>{}{}{}{}{}{}</svg>'
    ).format(WIDTH, height, WIDTH, height, title, _axes(scale, trends),
             joined(*(_series(scale, s, colours[s.version]) for s in trends.series)), _judged(scale, trends, colours),
             _markers(scale, trends), _nights(scale, trends), legend)  # fmt: skip
