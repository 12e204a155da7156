"""The "Agent models" page: every agent's live model, canary, trends, timeline and last nights, as one HTML document
(templates/overview.html).

Served by the plugin in `plugins/` inside Airflow's UI (an iframe under the nav entry), so links to Airflow's own
views are relative to the API server's root and open in the whole window. Every value that comes from logs,
specs or reasons is escaped by the template.
"""

from __future__ import annotations

from markupsafe import Markup

from agent_retraining.views.pages import code, joined, render_page, report_link, run_link
from agent_retraining.views.report_page import METRICS
from agent_retraining.views.trend_chart import trend_chart


def _metrics(metrics: dict | None) -> str:
    shown = [f"{name} {metrics[name]:.4f}" for name in METRICS if metrics and metrics.get(name) is not None]
    return ", ".join(shown) or "no metrics"


def _live(agent: dict) -> dict | None:
    live = agent["live"]
    if live is None:
        return None
    trained = live.get("trained_on") or {}
    return {"version": live["version"], "first": str(trained.get("first")), "last": str(trained.get("last")),
            "deployed_at": str(live.get("deployed_at")), "deployed_by": str(live.get("deployed_by")),
            "run": run_link(agent["dag_id"], live.get("run_id"), "run"),
            "metrics": _metrics(live.get("metrics"))}  # fmt: skip


def _canary(agent: dict) -> dict | None:
    canary = agent["canary"]
    if canary is None:
        return None
    return {"version": canary["version"], "share": f"{canary['share']:.0%}", "first_day": canary["first_day"],
            "started_at": canary["started_at"], "run": run_link(agent["dag_id"], canary.get("run_id"), "run"),
            "metrics": _metrics(canary.get("metrics"))}  # fmt: skip


def _rules(run: dict) -> Markup:
    if not run["rules"]:
        return Markup("")
    item = Markup("<li class={}>{}: {}</li>")
    items = joined(*(item.format("pass" if r["passed"] else "fail", r["rule"], r["detail"]) for r in run["rules"]))
    return Markup("<details><summary>{} rules</summary><ul>{}</ul></details>").format(len(run["rules"]), items)


def _data_gate(run: dict) -> Markup:
    gate = run["data_gate"]
    days = Markup(", ").join(
        Markup("{} {}").format(d["day"], "usable" if d["usable"] else Markup("<span class=fail>left out</span>"))
        for d in gate["days"]
    )
    failures = joined(*(Markup("<li class=fail>{}</li>").format(f) for f in gate["failures"]),
                      *(Markup("<li class={}>{}</li>").format("pass" if c["success"] else "fail", c["message"])
                        for c in gate["reward_rates"]))  # fmt: skip
    verdict = "no verdict" if gate["passed"] is None else "passed" if gate["passed"] else "refused"
    return Markup("<details><summary>data gate: {}</summary><p>{}</p><ul>{}</ul></details>").format(
        verdict, days, failures
    )


def _mlflow(run: dict) -> Markup | str:
    """What MLflow answered for the night (nothing when it is off): a failure is shown, never hidden."""
    told = run.get("mlflow")
    if not isinstance(told, list):
        return ""
    item = Markup("<li class={}>MLflow {}: {}</li>")
    said = [(t.get("ok"), t.get("what"), t.get("error")) for t in told if isinstance(t, dict)]
    items = joined(*(item.format("pass" if ok else "fail", what, "recorded" if ok else error)
                     for ok, what, error in said))  # fmt: skip
    return Markup("<ul>{}</ul>").format(items)


def _view(agent: dict) -> dict:
    """What the template shows of one agent; an agent whose records could not be read shows only that error."""
    shown = {"agent_id": agent["agent_id"], "description": agent["description"], "error": agent.get("error")}
    if shown["error"]:
        return shown
    dag_id = agent["dag_id"]
    timeline = [[str(e["at"]), e["event"], code(e["version"] or ""), e["reason"] or "",
                 run_link(e["dag_id"], e["run_id"], "run")] for e in agent["timeline"]]  # fmt: skip
    runs = [[r["day"], r["outcome"], r["winner"] or "", joined(r["verdict"], _rules(r), _data_gate(r), _mlflow(r)),
             joined(run_link(dag_id, r["run_id"], "run"), " ", report_link(r["report_html_key"]))]
            for r in agent["runs"]]  # fmt: skip
    return shown | {"live": _live(agent), "canary": _canary(agent), "release": agent["release"],
                    "canary_dag_id": agent["canary_dag_id"], "timeline": timeline, "runs": runs,
                    "trends": agent["trends"] and trend_chart(agent["trends"])}  # fmt: skip


def render(agents: list[dict]) -> str:
    return render_page("overview.html", agents=[_view(agent) for agent in agents])
