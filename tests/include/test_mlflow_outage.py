"""MLflow out of reach never reaches the pipeline: a closed port, a server that never answers, 5xx and answers that
are not MLflow's come back quickly as a failed TrackingOutcome, and nothing is raised. (The round trip against a
real MLflow server is tests/e2e/test_mlflow_tracking.py.)"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent_retraining.tracking.mlflow import MlflowSettings, move_aliases, record_night

MANIFEST = {"version": "20260302-lightgbm-222222222222", "artifact_key": "bot/models/v/model.txt", "canary": None}


def _record(settings):
    return record_night(settings, "bot", "2026-03-02", "scheduled__2026-03-02", {}, [], "artifacts")


def _move(settings):
    return move_aliases(settings, "bot", MANIFEST, "models")


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed


@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.fixture
def answering():
    """An HTTP server on 127.0.0.1 answering every request with (status, body); returns its URI and the requests."""
    servers, seen = [], []

    def start(status: int, body: bytes) -> str:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                seen.append(f"{self.command} {self.path}")
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start, seen
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("call", [_record, _move])
def test_a_closed_port_is_a_failed_outcome_within_seconds(call, closed_port):
    started = time.monotonic()
    outcome = call(MlflowSettings(f"http://127.0.0.1:{closed_port}", timeout_s=1, attempts=3))
    assert time.monotonic() - started < 5  # three tries, 0.5 s and 1 s apart
    assert not outcome.ok
    assert "Connection refused" in outcome.error
    assert outcome.as_dict()["error"] == outcome.error


@pytest.mark.parametrize("call", [_record, _move])
def test_a_server_that_never_answers_times_out_within_the_budget(call, silent_port):
    settings = MlflowSettings(f"http://127.0.0.1:{silent_port}", timeout_s=0.3, attempts=50, budget_s=1.5)
    started = time.monotonic()
    outcome = call(settings)
    assert time.monotonic() - started < 3
    assert not outcome.ok
    assert "budget is spent" in outcome.error
    assert "timed out" in outcome.error


def test_a_5xx_is_retried_then_reported(answering):
    start, seen = answering
    uri = start(503, b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "database is locked"}')
    outcome = _record(MlflowSettings(uri, timeout_s=1, attempts=3))
    assert not outcome.ok
    assert len(seen) == 3
    assert "HTTP 503 TEMPORARILY_UNAVAILABLE: database is locked" in outcome.error


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, b"<html>a login page</html>", "the answer is not JSON"),
        (200, b"[1, 2]", "the answer is not a JSON object"),
        (200, b"{}", "the answer has no experiment.experiment_id"),
        (401, b"Unauthorized", "HTTP 401 HTTP_401"),
    ],
)
def test_an_answer_that_is_not_mlflows_is_reported_at_once(answering, status, body, error):
    start, seen = answering
    outcome = _record(MlflowSettings(start(status, body), attempts=3))
    assert not outcome.ok
    assert error in outcome.error
    assert len(seen) == 1  # the same request would get the same answer


def test_mlflow_is_off_unless_a_tracking_uri_is_set():
    assert MlflowSettings.from_env({}) is None
    environ = {"MLFLOW_TRACKING_URI": "https://mlflow.example", "MLFLOW_TRACKING_TOKEN": "secret-token"}
    settings = MlflowSettings.from_env(environ)
    assert (settings.tracking_uri, settings.token) == ("https://mlflow.example", "secret-token")
    assert "secret-token" not in repr(settings)  # settings end up in task logs
    assert _record(None).ok
    assert _record(None).skipped
    assert _move(None).skipped
    assert move_aliases(settings, "bot", None, "models").skipped  # no manifest: nothing is live


def test_a_tracking_uri_that_is_not_a_server_is_a_failed_outcome():
    outcome = _record(MlflowSettings("file:./mlruns"))
    assert not outcome.ok
    assert "must be an http(s) MLflow server" in outcome.error


def test_the_page_shows_what_mlflow_answered_each_night_escaped(closed_port):
    from agent_retraining.views.overview_page import _mlflow

    failed = _record(MlflowSettings(f"http://127.0.0.1:{closed_port}", timeout_s=1, attempts=1, budget_s=3))
    shown = str(_mlflow({"mlflow": [failed.as_dict(), {"what": "move_aliases", "ok": False, "error": "<b>x</b>"}]}))
    assert "<li class=fail>MLflow record_night: " in shown
    assert "&lt;b&gt;x&lt;/b&gt;" in shown
    assert _mlflow({"mlflow": None}) == ""  # MLflow off: nothing to show
