"""The "Agent models" page in Airflow's UI: every agent's live model, canary, timeline and last nights.

A FastAPI app on the API server at `/agent-models/`, and a nav entry that shows
it inside the UI. Every endpoint needs an Airflow user allowed to read DAGs,
through the UI's session cookie or a bearer token: 401 without a credential,
403 with a bad one. S3 is read through the `agent_s3` connection, and the page
runs no script (its Content-Security-Policy allows none).

    /agent-models/              the page
    /agent-models/api/agents    the same as JSON
    /agent-models/report?key=   a run's report.html (only a report key of a known agent)
"""

from __future__ import annotations

from airflow.api_fastapi.core_api.security import requires_access_dag
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse

NO_SCRIPT = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:"}

app = FastAPI(title="Agent models", dependencies=[Depends(requires_access_dag("GET"))])


def _sources():
    from agent_retraining.spec import load_all_specs
    from agent_retraining.storage import buckets_from_env
    from retraining_runtime import s3_client

    return s3_client(), buckets_from_env(), load_all_specs()[0]


def _overviews() -> list[dict]:
    from agent_retraining.overview import agent_overview

    s3, buckets, specs = _sources()
    return [agent_overview(s3, buckets, spec) for spec in specs]


@app.get("/", response_class=HTMLResponse)
def agent_models_page() -> HTMLResponse:
    from agent_retraining.overview_page import render

    return HTMLResponse(render(_overviews()), headers=NO_SCRIPT)


@app.get("/api/agents")
def agent_models() -> list[dict]:
    return _overviews()


@app.get("/report", response_class=HTMLResponse)
def run_report(key: str) -> HTMLResponse:
    from agent_retraining.overview import report_page_key
    from agent_retraining.storage import ObjectMissing, get_bytes

    s3, buckets, specs = _sources()
    if report_page_key([spec.agent_id for spec in specs], key) is None:
        raise HTTPException(status_code=404, detail="not a run report of a known agent")
    try:
        body, _ = get_bytes(s3, buckets.artifacts, key)
    except ObjectMissing as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return HTMLResponse(body.decode(), headers=NO_SCRIPT)


class AgentModelsPlugin(AirflowPlugin):
    name = "agent_models"
    fastapi_apps = [{"app": app, "url_prefix": "/agent-models", "name": "Agent models"}]
    external_views = [
        {"name": "Agent models", "href": "agent-models/", "destination": "nav", "url_route": "agent-models",
         "category": "browse"},
    ]  # fmt: skip
