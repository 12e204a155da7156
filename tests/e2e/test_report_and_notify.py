"""What a person sees of a run: report.html beside report.json, and an e-mail and a Slack message on a refusal (a
real SMTP sink, and a local HTTP server standing in for Slack's webhook).

The agent's spec description and one day's logs carry `<script>` on purpose:
both must reach the page and the e-mail as text.
"""

import json
import re
import socket
from datetime import UTC, date, datetime, time, timedelta
from email import message_from_bytes
from email.policy import default

import pytest
import yaml
from markupsafe import escape

from agent_retraining.contract import run_prefix
from agent_retraining.dev.simulate import World, day_events, write_day
from agent_retraining.storage import get_bytes, read_json
from tests.conftest import load_dag_file, spec_variant
from tests.e2e.webhook_sink import WebhookSink

AGENT = "notify-bot"
START = date(2026, 2, 1)
INJECTED = "<script>alert('logs')</script>"
DESCRIPTION = "<script>alert('spec')</script> support bot"


class Sink:
    """A local SMTP server that keeps every message it receives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=default)))
        return "250 OK"


@pytest.fixture
def smtp_sink(monkeypatch):
    from aiosmtpd.controller import Controller

    sink = Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
                  "extra": {"from_email": "airflow@example.com", "disable_ssl": True, "disable_tls": True}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(connection))
    yield sink
    controller.stop()


@pytest.fixture
def slack_sink(monkeypatch):
    with WebhookSink() as sink:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_OPS", sink.connection())
        yield sink


@pytest.fixture
def notify_agent(support_bot, buckets, airflow_db, s3, tmp_path, monkeypatch):
    spec = spec_variant(support_bot, agent_id=AGENT, description=DESCRIPTION,
                        training={**support_bot.training.model_dump(), "window_days": 3},
                        notifications={"email": ["ops@example.com"], "slack": ["slack_ops"]})  # fmt: skip
    monkeypatch.setenv("AGENT_SPECS_DIR", str(tmp_path))
    (tmp_path / f"{AGENT}.yaml").write_text(yaml.safe_dump(spec.model_dump(), sort_keys=False))
    world = World.for_spec(spec, 0)
    for n in range(3):
        day = START + timedelta(days=n)
        events = day_events(world, day, 800, 1)
        if n == 2:  # the run's own day: 10% of `language` is a value the vocabulary does not know
            for event in events[::10]:
                event["context"]["language"] = INJECTED
        write_day(s3, buckets.logs, spec, day, events)
    return spec


def test_a_refused_run_is_told_by_mail_and_slack_and_its_page_shows_logs_and_spec_as_text(
    notify_agent, smtp_sink, slack_sink, s3, buckets
):
    day = START + timedelta(days=2)
    dag = load_dag_file("retrain_agents.py").build_retraining_dag(notify_agent)
    dag_run = dag.test(logical_date=datetime.combine(day + timedelta(days=1), time(), UTC))
    assert dag_run.state == "failed"
    report = read_json(s3, buckets.artifacts, run_prefix(AGENT, day, dag_run.run_id) + "report.json")
    assert report["outcome"] == "data rejected"
    assert "in_vocabulary" in report["verdict"]
    assert INJECTED in report["verdict"]  # the refusal names the value it found

    assert len(smtp_sink.messages) == 1
    recipients, message = smtp_sink.messages[0]
    assert recipients == ["ops@example.com"]
    assert message["Subject"] == f"[{AGENT}] {day}: data rejected"
    body = message.get_body(("html", "plain")).get_content()
    assert escape(INJECTED) in body
    assert "<script" not in body
    link = re.search(r'href="([^"]+)"', body).group(1)
    assert link.startswith(f"http://localhost:8080/dags/retrain_{AGENT}/runs/")
    assert link.endswith(dag_run.run_id.replace(":", "%3A").replace("+", "%2B"))

    (posted,) = slack_sink.received  # the same verdict through Slack's webhook notifier, as plain text
    assert posted["path"] == "/services/T000/B000/sink"
    text = posted["body"]["text"]
    assert text.startswith(f"[{AGENT}] {day}: data rejected\n")
    assert INJECTED in text  # Slack shows text as text; the refusal names the value it found
    assert dag_run.run_id.replace(":", "%3A").replace("+", "%2B") in text

    page = get_bytes(s3, buckets.artifacts, report["report_html_key"])[0].decode()
    assert "<script" not in page  # neither the spec's description nor the logged value runs
    assert escape(DESCRIPTION) in page
    assert escape(INJECTED) in page
    assert page.index("data rejected") < page.index("The data gate")  # the verdict comes first
    assert not re.search(r'(src|href)="?https?:', page)  # readable offline: nothing fetched from elsewhere


def test_no_mail_for_an_outcome_the_spec_does_not_list(notify_agent, smtp_sink, slack_sink, s3, buckets, tmp_path):
    quiet = spec_variant(notify_agent, notifications={"email": ["ops@example.com"], "slack": ["slack_ops"],
                                                      "on": ["deployed"]})  # fmt: skip
    (tmp_path / f"{AGENT}.yaml").write_text(yaml.safe_dump(quiet.model_dump(), sort_keys=False))
    day = START + timedelta(days=2)
    dag_run = (
        load_dag_file("retrain_agents.py")
        .build_retraining_dag(quiet)
        .test(logical_date=datetime.combine(day + timedelta(days=1), time(), UTC))
    )
    assert dag_run.state == "failed"
    assert {ti.task_id: ti.state for ti in dag_run.get_task_instances()}["notify"] == "success"
    assert smtp_sink.messages == []
    assert slack_sink.received == []
