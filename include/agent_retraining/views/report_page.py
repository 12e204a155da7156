"""report.html: one run's report as a page a person reads, offline, with its plots drawn on the server.

People would rather look than read JSON. The page is a single file: no script,
no stylesheet or font from a CDN, every plot an inline SVG rendered by
matplotlib (text drawn as paths). Every value that comes from logs or a spec
(a context value in a refusal, a slice name, a description) is HTML-escaped, so
a log line holding `<script>` shows as text.
"""

from __future__ import annotations

import io
from html import escape

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
.verdict{font-size:1.15em;padding:.8em;border-radius:6px;background:#eef}
.verdict.deployed{background:#e6f4ea}.verdict.refused{background:#fdecea}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}.fail{color:#b00020}.pass{color:#137333}
.plots{display:flex;flex-wrap:wrap;gap:1em}
"""
METRICS = ("roc_auc", "log_loss_skill", "brier_skill", "log_loss", "brier", "calibration_error", "policy_value")


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def html_table(header: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    """A table of cells that are HTML already (escaped by the caller); `numeric` columns align right."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    cells = ("".join(f"<td{' class=num' if i in numeric else ''}>{cell}</td>" for i, cell in enumerate(row))
             for row in rows)  # fmt: skip
    body = "".join(f"<tr>{row}</tr>" for row in cells)
    return f"<table><tr>{head}</tr>{body}</table>"


def _passed(ok: bool) -> str:
    return '<span class="pass">pass</span>' if ok else '<span class="fail">FAIL</span>'


def _svg(figure) -> str:
    """The figure as inline SVG: text as paths (no fonts to fetch), no XML prologue."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _figure(width: float = 5.2, height: float = 3.4):
    import matplotlib

    matplotlib.use("Agg")
    # text.parse_math off: a slice or action name from the logs ("$\sqrt{$") is text, never math to parse
    matplotlib.rcParams.update({"svg.fonttype": "path", "svg.hashsalt": "report", "font.size": 8,
                                "text.parse_math": False})  # fmt: skip
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _model_names(decision: dict) -> list[str]:
    return list(decision["metrics"])  # the candidates, then the champion when there is one


def models_table(decision: dict) -> str:
    """Every model against the champion: each metric, and its difference from the champion's."""
    names = _model_names(decision)
    champion = decision["metrics"].get("champion")
    rows = []
    for metric in METRICS:
        cells = [escape(metric)]
        for name in names:
            value = decision["metrics"][name].get(metric)
            shown = _number(value)
            if champion and name != "champion" and value is not None and champion.get(metric) is not None:
                shown += f" ({value - champion[metric]:+.4f})"
            cells.append(shown)
        rows.append(cells)
    note = "in brackets: the difference from the champion" if champion else "no champion: judged on the floors"
    return html_table(["metric", *names], rows, set(range(1, len(names) + 1))) + f"<p>{escape(note)}</p>"


def policy_value_plot(decision: dict) -> str:
    """Each model's greedy policy value (SNIPS) and the logging policy's, with 95% intervals as error bars."""
    names = _model_names(decision)
    values = [decision["metrics"][n]["policy_value"] for n in names] + [decision["logging_policy_value"]["value"]]
    intervals = [decision["metrics"][n]["policy_value_ci"] for n in names] + [decision["logging_policy_value"]["ci"]]
    labels = [*names, "logging policy"]
    figure, axes = _figure()
    for i, (value, (low, high)) in enumerate(zip(values, intervals, strict=True)):
        if value is not None:
            axes.errorbar([i], [value], yerr=[[value - low], [high - value]], fmt="o", capsize=4)
    axes.set_xticks(range(len(labels)), labels, rotation=20)
    axes.set_ylabel("policy value (expected reward per decision)")
    axes.set_title("policy value, 95% interval")
    return _svg(figure)


def calibration_plot(decision: dict) -> str:
    figure, axes = _figure()
    axes.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    for name in _model_names(decision):
        curve = decision["metrics"][name].get("calibration_curve") or []
        axes.plot([p["predicted"] for p in curve], [p["observed"] for p in curve], "o-", label=name)
    axes.set_xlabel("mean predicted P(reward)")
    axes.set_ylabel("observed reward rate")
    axes.set_title("calibration on the holdout")
    axes.legend(fontsize=7)
    return _svg(figure)


def _slices(decision: dict) -> list[str]:
    """Every slice any model was measured on: each logged action, each value of the spec's slice features."""
    return sorted({s for n in _model_names(decision) for s in decision["metrics"][n]["slices"]})


def slice_plot(decision: dict) -> str:
    """ROC AUC of every model on every slice."""
    names, slices = _model_names(decision), _slices(decision)
    if not slices:
        return "<p>no slice had enough rows</p>"
    figure, axes = _figure(7.5, 0.25 * len(slices) * len(names) + 1.2)
    height = 0.8 / len(names)
    for j, name in enumerate(names):
        aucs = [(decision["metrics"][name]["slices"].get(s) or {}).get("roc_auc") for s in slices]
        positions = [i + j * height for i, auc in enumerate(aucs) if auc is not None]
        axes.barh(positions, [auc for auc in aucs if auc is not None], height=height, label=name)
    axes.set_yticks([i + 0.4 - height / 2 for i in range(len(slices))], slices)
    axes.set_xlim(0.4, 1.0)
    axes.set_xlabel("ROC AUC")
    axes.set_title("ROC AUC per slice")
    axes.legend(fontsize=7)
    return _svg(figure)


def slice_table(decision: dict) -> str:
    names = _model_names(decision)
    rows = [[escape(s), *(_number((decision["metrics"][n]["slices"].get(s) or {}).get("roc_auc")) for n in names)]
            for s in _slices(decision)]  # fmt: skip
    return html_table(["slice", *names], rows, set(range(1, len(names) + 1)))


def drift_plot(validation: dict) -> str:
    """PSI of each context feature of the run's day against the earlier usable days, with the spec's limit."""
    day = validation["window"]["last"]
    drift = [c for c in validation["checks"] if c["rule"].startswith("drift:") and c.get("day") == day]
    if not drift:
        return "<p>no drift measured (no earlier usable day to compare with)</p>"
    figure, axes = _figure()
    names = [c["rule"].removeprefix("drift:") for c in drift]
    colours = ["tab:blue" if c["success"] else "tab:red" for c in drift]
    axes.barh(names, [c["observed"] for c in drift], color=colours)
    axes.set_xlabel(f"PSI of {day} against the earlier usable days")
    axes.set_title("drift per feature")
    return _svg(figure)


def _failed_rules(rules: list[dict]) -> str:
    return escape("; ".join(f"{r['rule']}: {r['detail']}" for r in rules))


def candidates_table(decision: dict) -> str:
    """Every candidate's verdict, best first by the primary metric, and the champion's on today's floors."""
    metric = decision["primary_metric"]
    rows = [[escape(c["candidate"]), _number(c.get(metric)), _passed(c["passed"]), _failed_rules(c["failed"])]
            for c in decision.get("candidates") or []]  # fmt: skip
    champion = decision["champion"]
    if champion.get("floors"):
        failed = [r for r in champion["floors"] if not r["passed"]]
        rows.append([f"champion {escape(champion['version'])} (today's floors)", "", _passed(not failed),
                     _failed_rules(failed)])  # fmt: skip
    return html_table(["model", metric, "verdict", "failed rules"], rows, {1})


def decision_section(decision: dict) -> str:
    rules = [[escape(r["rule"]), _passed(r["passed"]), escape(r["detail"])] for r in decision["rules"]]
    return (
        "<h2>Models against the champion</h2>" + models_table(decision)
        + "<h2>Each candidate's verdict</h2>" + candidates_table(decision)
        + "<h2>Plots</h2><div class=plots>" + policy_value_plot(decision) + calibration_plot(decision) + "</div>"
        + "<h2>ROC AUC per slice</h2>" + slice_plot(decision) + slice_table(decision)
        + "<h2>The gate's rules</h2>" + html_table(["rule", "result", "what was compared"], rules)
    )  # fmt: skip


def reward_rate_table(validation: dict) -> str:
    """The run's own day's reward rate per model version that acted, against what it was tested on."""
    rows = [[f"<code>{escape(c['version'] or 'logging policy')}</code>", f"{c['rows']:,}", _number(c["observed"]),
             _number(c.get("reference")), "n/a" if c.get("p_value") is None else f"{c['p_value']:.2g}",
             _passed(c["success"])] for c in validation.get("reward_rates") or []]  # fmt: skip
    if not rows:
        return "<p>not judged (no earlier usable day to compare with)</p>"
    return html_table(["version", "events", "reward rate", "reference", "p", "result"], rows, {1, 2, 3, 4})


def validation_section(validation: dict) -> str:
    day = validation["window"]["last"]
    own = [c for c in validation["checks"] if c.get("day") == day]
    rules = [[escape(c["rule"]), escape(c["tier"]), _passed(c["success"]), escape(c.get("message", ""))] for c in own]
    days = [[escape(d["day"]), "yes" if d["usable"] else '<span class="fail">left out</span>',
             "reused" if d["reused"] else "judged", f"{d['rows']:,}"] for d in validation["days"]]  # fmt: skip
    verdict = "passed" if validation["passed"] else "refused: " + "; ".join(validation["failures"])
    return (
        f"<h2>The data gate</h2><p>{escape(verdict)}</p>"
        + html_table(["day", "usable", "verdict", "rows"], days, {3})
        + f"<h3>Rules on {escape(day)}</h3>" + html_table(["rule", "tier", "result", "message"], rules)
        + "<h3>Reward rate by acting version</h3>" + reward_rate_table(validation)
        + "<h3>Drift</h3>" + drift_plot(validation)
    )  # fmt: skip


def render(report: dict, sentence: str, description: str, validation: dict | None, decision: dict | None) -> str:
    """The whole page; `sentence` is the verdict in one sentence, shown first."""
    kind = "deployed" if report["outcome"] in ("deployed", "canary started") else "refused"
    parts = [
        f"<h1>{escape(report['agent_id'])}: the run of {escape(report['day'])}</h1>",
        f'<p class="verdict {kind}">{escape(sentence)}</p>',
        f"<p>{escape(description)}<br>run <code>{escape(report['run_id'])}</code>; live model now: "
        f"<code>{escape(str(report['live_version']))}</code></p>",
    ]
    if decision:
        parts.append(decision_section(decision))
    if validation:
        parts.append(validation_section(validation))
    title = escape(f"{report['agent_id']} {report['day']}: {report['outcome']}")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(parts)}</body></html>")  # fmt: skip
