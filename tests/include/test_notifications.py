"""Which outcomes are told, to whom, and that the message quotes logs as text."""

import pytest

from agent_retraining.views.notifications import event_of, message_for, run_url
from tests.conftest import spec_variant


@pytest.mark.parametrize(
    ("outcome", "event"),
    [
        ("deployed", "deployed"),
        ("canary started", "deployed"),
        ("data rejected", "data_rejected"),
        ("kept champion", "kept_champion"),
        ("kept champion: the deploy was not approved or did not run", "kept_champion"),
        ("deploy refused", "failed"),
        ("alert: the champion fails today's floors and no candidate passed", "failed"),
        ("failed before decision finished", "failed"),
    ],
)
def test_every_outcome_is_one_event(outcome, event):
    assert event_of(outcome) == event


def test_only_the_listed_events_of_an_agent_with_recipients_are_told(support_bot):
    report = {"day": "2026-02-03", "outcome": "kept champion", "verdict": "kept: x <b>y</b>"}
    assert message_for(support_bot, report, "u", "s3://r") is None  # nobody to tell
    told = spec_variant(support_bot, notifications={"email": ["ops@example.com"], "on": ["kept_champion"]})
    message = message_for(told, report, "http://airflow/dags/d/runs/r", "s3://bucket/report.html")
    assert (message.event, message.subject) == ("kept_champion", "[support-bot] 2026-02-03: kept champion")
    assert "kept: x &lt;b&gt;y&lt;/b&gt;" in message.html
    assert 'href="http://airflow/dags/d/runs/r"' in message.html
    assert message_for(told, {**report, "outcome": "deployed"}, "u", "s3://r") is None  # not listed


def test_the_link_quotes_the_run_id():
    url = run_url("http://localhost:8080/", "retrain_support-bot", "manual__2026-02-04T00:00:00+00:00")
    assert url == "http://localhost:8080/dags/retrain_support-bot/runs/manual__2026-02-04T00%3A00%3A00%2B00%3A00"
