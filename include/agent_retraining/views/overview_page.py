"""The "Agent models" page: every agent's live model, canary, timeline and last nights, as one HTML document.

Served by the plugin in `plugins/` inside Airflow's UI (an iframe under the
nav entry), so links to Airflow's own views are relative to the API server's
root and open in the whole window. Every value that comes from logs, specs or
reasons is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from agent_retraining.views.notifications import run_url
from agent_retraining.views.report_page import METRICS, STYLE, html_table

PAGE_STYLE = (
    STYLE
    + """
.agent{border:1px solid #ccc;border-radius:8px;padding:0 1em 1em;margin-bottom:2em}
.cards{display:flex;gap:1em;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:.5em 1em;min-width:20em}
details{margin:.3em 0}summary{cursor:pointer}
"""
)


def _run_link(dag_id: str, run_id: str | None, text: str | None = None) -> str:
    """A link to the run in Airflow's own view (from /agent-models/ up to the API server's root)."""
    if not run_id:
        return ""
    href = run_url("..", dag_id, run_id)
    return f'<a href="{escape(href)}" target="_top">{escape(text or run_id)}</a>'


def _report_link(key: str | None) -> str:
    return f'<a href="report?{escape(urlencode({"key": key}))}" target="_blank">report</a>' if key else ""


def _metrics(metrics: dict | None) -> str:
    shown = [f"{name} {metrics[name]:.4f}" for name in METRICS if metrics and metrics.get(name) is not None]
    return escape(", ".join(shown) or "no metrics")


def live_card(agent: dict) -> str:
    live = agent["live"]
    if live is None:
        return '<div class="card"><h3>Live model</h3><p>none yet: the agent acts on its built-in policy</p></div>'
    trained = live.get("trained_on") or {}
    return (
        f'<div class="card"><h3>Live model</h3><p><code>{escape(live["version"])}</code></p>'
        f"<p>trained on {escape(str(trained.get('first')))} to {escape(str(trained.get('last')))}<br>"
        f"live since {escape(str(live.get('deployed_at')))} by {escape(str(live.get('deployed_by')))} "
        f"({_run_link(agent['dag_id'], live.get('run_id'), 'run')})</p><p>{_metrics(live.get('metrics'))}</p></div>"
    )


def canary_card(agent: dict) -> str:
    canary = agent["canary"]
    if canary is None:
        return f'<div class="card"><h3>Canary</h3><p>none (release mode {escape(agent["release"])})</p></div>'
    return (
        f'<div class="card"><h3>Canary</h3><p><code>{escape(canary["version"])}</code> on '
        f"{canary['share']:.0%} of sessions since {escape(canary['first_day'])}</p><p>started "
        f"{escape(canary['started_at'])} ({_run_link(agent['dag_id'], canary.get('run_id'), 'run')}); the DAG "
        f"<code>{escape(agent['canary_dag_id'])}</code> decides</p><p>{_metrics(canary.get('metrics'))}</p></div>"
    )


def timeline_table(agent: dict) -> str:
    rows = [[escape(str(e["at"])), escape(e["event"]), f"<code>{escape(e['version'] or '')}</code>",
             escape(e["reason"] or ""), _run_link(e["dag_id"], e["run_id"], "run")]
            for e in agent["timeline"]]  # fmt: skip
    return html_table(["when", "what", "version", "why", ""], rows)


def _rules(run: dict) -> str:
    rules = "".join(
        f"<li class={'pass' if r['passed'] else 'fail'}>{escape(r['rule'])}: {escape(r['detail'])}</li>"
        for r in run["rules"]
    )
    return f"<details><summary>{len(run['rules'])} rules</summary><ul>{rules}</ul></details>" if rules else ""


def _data_gate(run: dict) -> str:
    gate = run["data_gate"]
    days = ", ".join(
        f"{escape(d['day'])} {'usable' if d['usable'] else '<span class=fail>left out</span>'}" for d in gate["days"]
    )
    failures = "".join(f"<li class=fail>{escape(f)}</li>" for f in gate["failures"])
    failures += "".join(f"<li class={'pass' if c['success'] else 'fail'}>{escape(c['message'])}</li>"
                        for c in gate["reward_rates"])  # fmt: skip
    verdict = "no verdict" if gate["passed"] is None else "passed" if gate["passed"] else "refused"
    return f"<details><summary>data gate: {verdict}</summary><p>{days}</p><ul>{failures}</ul></details>"


def runs_table(agent: dict) -> str:
    rows = [[escape(r["day"]), escape(r["outcome"]), escape(r["winner"] or ""),
             f"{escape(r['verdict'])}{_rules(r)}{_data_gate(r)}",
             f"{_run_link(agent['dag_id'], r['run_id'], 'run')} {_report_link(r['report_html_key'])}"]
            for r in agent["runs"]]  # fmt: skip
    return html_table(["night", "outcome", "winner", "why", ""], rows)


def _section(agent: dict) -> str:
    """One agent's section; an agent whose records could not be read shows only that error."""
    if "error" in agent:
        body = f"<p class=fail>{escape(agent['error'])}</p>"
    else:
        body = (f"<div class=cards>{live_card(agent)}{canary_card(agent)}</div><h3>Timeline</h3>"
                f"{timeline_table(agent)}<h3>Last nights</h3>{runs_table(agent)}")  # fmt: skip
    return (f'<section class="agent" id="{escape(agent["agent_id"])}"><h2>{escape(agent["agent_id"])}</h2>'
            f"<p>{escape(agent['description'])}</p>{body}</section>")  # fmt: skip


def render(agents: list[dict]) -> str:
    sections = "".join(_section(a) for a in agents) or "<p>no agent whose retraining DAG you may read</p>"
    return (f"<!doctype html><html><head><meta charset=utf-8><title>Agent models</title><style>{PAGE_STYLE}</style>"
            f"</head><body><h1>Agent models</h1>{sections}</body></html>")  # fmt: skip
