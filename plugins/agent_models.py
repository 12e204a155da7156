"""The "Agent models" page in Airflow's UI: every agent's live model, canary, timeline and last nights.

A FastAPI app on the API server at `/agent-models/`, and a nav entry that shows
it inside the UI. Every endpoint needs an Airflow user, through the UI's session
cookie or a bearer token (401 without a credential, 403 with a bad one), and
shows only the agents whose retraining DAG that user may read, as Airflow's auth
manager decides for each DAG: no query parameter widens it, and another agent's
report answers 404. S3 is read through the `agent_s3` connection. The page runs
no script (its Content-Security-Policy allows none), is framed only by Airflow's
own UI, and serves no OpenAPI or docs routes. An agent whose records cannot be
read shows that error in its own section; errors name what failed, never a
bucket or an S3 message.

    /agent-models/              the page
    /agent-models/api/agents    the same as JSON
    /agent-models/report?key=   a run's report.html (only a report key of an agent the user may read)
"""

from __future__ import annotations

import logging

from airflow.api_fastapi.core_api.security import GetUserDep
from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse

log = logging.getLogger(__name__)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'self'; form-action 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
}

app = FastAPI(title="Agent models", docs_url=None, redoc_url=None, openapi_url=None)


def _readable(user) -> tuple:
    """The S3 client, the buckets and the specs of the agents whose retraining DAG `user` may read."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    from agent_retraining.spec import load_all_specs
    from agent_retraining.storage import buckets_from_env
    from retraining_runtime import s3_client

    auth = get_auth_manager()
    specs = [spec for spec in load_all_specs()[0]
             if auth.is_authorized_dag(method="GET", details=DagDetails(id=spec.dag_id), user=user)]  # fmt: skip
    return s3_client(), buckets_from_env(), specs


def _overviews(user) -> list[dict]:
    from agent_retraining.views.overview import agent_overview

    s3, buckets, specs = _readable(user)
    overviews = []
    for spec in specs:
        try:
            overviews.append(agent_overview(s3, buckets, spec))
        except Exception as exc:  # noqa: BLE001 - one agent's broken record shows in its own section only
            log.exception("overview of %s", spec.agent_id)
            overviews.append({"agent_id": spec.agent_id, "description": spec.description,
                              "error": f"its records could not be read ({type(exc).__name__}); see the API "
                                       "server's log"})  # fmt: skip
    return overviews


@app.get("/", response_class=HTMLResponse)
def agent_models_page(user: GetUserDep) -> HTMLResponse:
    from agent_retraining.views.overview_page import render

    return HTMLResponse(render(_overviews(user)), headers=SECURITY_HEADERS)


@app.get("/api/agents")
def agent_models(user: GetUserDep) -> list[dict]:
    return _overviews(user)


@app.get("/report", response_class=HTMLResponse)
def run_report(key: str, user: GetUserDep) -> HTMLResponse:
    from agent_retraining.storage import ObjectMissing, get_bytes
    from agent_retraining.views.overview import report_page_key

    s3, buckets, specs = _readable(user)
    if report_page_key([spec.agent_id for spec in specs], key) is None:
        raise HTTPException(status_code=404, detail="not a run report of an agent you may read")
    try:
        body, _ = get_bytes(s3, buckets.artifacts, key)
    except ObjectMissing as exc:
        raise HTTPException(status_code=404, detail="no such run report") from exc
    return HTMLResponse(body.decode(errors="replace"), headers=SECURITY_HEADERS)


class AgentModelsPlugin(AirflowPlugin):
    name = "agent_models"
    fastapi_apps = [{"app": app, "url_prefix": "/agent-models", "name": "Agent models"}]
    external_views = [
        {"name": "Agent models", "href": "agent-models/", "destination": "nav", "url_route": "agent-models",
         "category": "browse"},
    ]  # fmt: skip
