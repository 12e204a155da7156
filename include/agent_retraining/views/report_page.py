"""report.html: one run's report as a page a person reads, offline, with its plots drawn on the server.

People would rather look than read JSON. The page is a single file (templates/report.html): no script, no
stylesheet or font from a CDN, every plot an inline SVG rendered by matplotlib (text drawn as paths, math text
off). Every value that comes from logs or a spec (a context value in a refusal, a slice name, a description)
is escaped by the template, so a log line holding `<script>` shows as text.
"""

from __future__ import annotations

import io

from markupsafe import Markup

from agent_retraining.spec import Reward
from agent_retraining.views.pages import code, number, passed, render_page
from agent_retraining.views.trend_chart import trend_chart
from agent_retraining.views.trends import Trends

METRICS = ("roc_auc", "log_loss_skill", "brier_skill", "log_loss", "brier", "rmse", "mae", "calibration_error",
           "policy_value")  # fmt: skip
ESTIMATOR_NAMES = {"snips": "self-normalised IPS", "dr": "self-normalised doubly robust"}


def _svg(figure) -> Markup:
    """The figure as inline SVG: text as paths (no fonts to fetch), no XML prologue; matplotlib's own output."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return Markup(text[text.index("<svg") :])  # matplotlib's own output, labels drawn as paths


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


def _slices(decision: dict) -> list[str]:
    """Every slice any model was measured on: each logged action, each value of the spec's slice features."""
    return sorted({s for n in _model_names(decision) for s in decision["metrics"][n]["slices"]})


def policy_value_plot(decision: dict) -> Markup:
    """Each model's greedy policy value (by the estimator that decided) and the logging policy's, with 95% intervals
    as error bars."""
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
    estimator = (decision.get("estimator") or {}).get("name", "snips")
    axes.set_title(f"policy value ({ESTIMATOR_NAMES[estimator]}), 95% interval")
    return _svg(figure)


def calibration_plot(decision: dict) -> Markup:
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


def slice_plot(decision: dict) -> Markup | None:
    """ROC AUC of every model on every slice."""
    names, slices = _model_names(decision), _slices(decision)
    if not slices:
        return None
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


def drift_plot(validation: dict) -> Markup | None:
    """PSI of each context feature of the run's day against the earlier usable days, with the spec's limit."""
    day = validation["window"]["last"]
    drift = [c for c in validation["checks"] if c["rule"].startswith("drift:") and c.get("day") == day]
    if not drift:
        return None
    figure, axes = _figure()
    names = [c["rule"].removeprefix("drift:") for c in drift]
    colours = ["tab:blue" if c["success"] else "tab:red" for c in drift]
    axes.barh(names, [c["observed"] for c in drift], color=colours)
    axes.set_xlabel(f"PSI of {day} against the earlier usable days")
    axes.set_title("drift per feature")
    return _svg(figure)


def _failed_rules(rules: list[dict]) -> str:
    return "; ".join(f"{r['rule']}: {r['detail']}" for r in rules)


def _models(decision: dict, names: list[str]) -> list[list]:
    """Every model against the champion: each metric, and its difference from the champion's."""
    champion = decision["metrics"].get("champion")
    rows = []
    for metric in METRICS:
        cells = [metric]
        for name in names:
            value = decision["metrics"][name].get(metric)
            shown = number(value)
            if champion and name != "champion" and value is not None and champion.get(metric) is not None:
                shown += f" ({value - champion[metric]:+.4f})"
            cells.append(shown)
        rows.append(cells)
    return rows


def _candidates(decision: dict) -> list[list]:
    """Every candidate's verdict, best first by the primary metric, and the champion's on today's floors."""
    metric = decision["primary_metric"]
    rows = [[c["candidate"], number(c.get(metric)), passed(c["passed"]), _failed_rules(c["failed"])]
            for c in decision.get("candidates") or []]  # fmt: skip
    champion = decision["champion"]
    if champion.get("floors"):
        failed = [r for r in champion["floors"] if not r["passed"]]
        rows.append([f"champion {champion['version']} (today's floors)", "", passed(not failed), _failed_rules(failed)])
    return rows


def _in_units(decision: dict, difference: float | None) -> str:
    """A policy-value difference on the [0, 1] scale as the report prints it: in the reward's units as well when
    they differ (a decision from before graded rewards has a binary one)."""
    reward = Reward.model_validate(decision.get("reward") or {"type": "binary"})
    if difference is None or reward.range == (0.0, 1.0):
        return number(difference)
    return f"{number(difference)} ({reward.in_units(difference, difference=True):+.4g} in the reward's units)"


def _estimators(decision: dict) -> list[list]:
    """The winner's policy value against the champion (or the logging policy) by every estimator, which decided."""
    by, deciding = decision.get("policy_value_differences") or {}, (decision.get("estimator") or {}).get("name")
    rows = []
    for name, compared in by.items():
        against = "champion" if compared.get("vs_champion") else "logging policy"
        paired = compared.get("vs_champion") or compared["vs_logging"]
        low, high = paired["ci"] or (None, None)
        role = "decided" if name == deciding else "for comparison"
        rows.append([ESTIMATOR_NAMES[name], against, _in_units(decision, paired["difference"]),
                     f"[{number(low)}, {number(high)}]", role])  # fmt: skip
    return rows


def decision_view(decision: dict) -> dict:
    names = _model_names(decision)
    slices = [[s, *(number((decision["metrics"][n]["slices"].get(s) or {}).get("roc_auc")) for n in names)]
              for s in _slices(decision)]  # fmt: skip
    return {
        "names": names,
        "numeric": list(range(1, len(names) + 1)),
        "models": _models(decision, names),
        "note": "in brackets: the difference from the champion" if decision["metrics"].get("champion")
        else "no champion: judged on the floors",
        "primary_metric": decision["primary_metric"],
        "candidates": _candidates(decision),
        "estimators": _estimators(decision),
        "reward_model": (decision.get("estimator") or {}).get("reward_model"),
        "policy_plot": policy_value_plot(decision),
        "calibration_plot": calibration_plot(decision),
        "slice_plot": slice_plot(decision),
        "slices": slices,
        "rules": [[r["rule"], passed(r["passed"]), r["detail"]] for r in decision["rules"]],
    }  # fmt: skip


def validation_view(validation: dict) -> dict:
    day = validation["window"]["last"]
    left_out = Markup('<span class="fail">left out</span>')
    rates = [[code(c["version"] or "logging policy"), f"{c['rows']:,}", number(c["observed"]),
              number(c.get("reference")), "n/a" if c.get("p_value") is None else f"{c['p_value']:.2g}",
              passed(c["success"])] for c in validation.get("reward_rates") or []]  # fmt: skip
    return {
        "day": day,
        "verdict": "passed" if validation["passed"] else "refused: " + "; ".join(validation["failures"]),
        "days": [[d["day"], "yes" if d["usable"] else left_out, "reused" if d["reused"] else "judged", f"{d['rows']:,}"]
                 for d in validation["days"]],
        "rules": [[c["rule"], c["tier"], passed(c["success"]), c.get("message", "")]
                  for c in validation["checks"] if c.get("day") == day],
        "reward_rates": rates,
        "drift_plot": drift_plot(validation),
    }  # fmt: skip


def render(report: dict, sentence: str, description: str, validation: dict | None, decision: dict | None,
           trends: Trends | None) -> str:  # fmt: skip
    """The whole page; `sentence` is the verdict in one sentence, shown first."""
    return render_page(
        "report.html",
        report={**report, "live_version": str(report["live_version"])},
        kind="deployed" if report["outcome"] in ("deployed", "canary started") else "refused",
        sentence=sentence,
        description=description,
        decision=decision and decision_view(decision),
        validation=validation and validation_view(validation),
        trends=trends and trend_chart(trends),
    )
