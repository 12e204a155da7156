"""Which outcomes are told, to whom, and that the message quotes logs as text."""

import asyncio
import re
from typing import ClassVar

import pytest
from airflow.sdk import BaseNotifier

from agent_retraining.views.notifications import event_of, message_for, run_url
from agent_retraining.views.notifiers import NotificationFailed, deadline_missed, send
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


class Recorder(BaseNotifier):
    """A notifier named by its class in a spec: it keeps what it was told, rendered from its templated fields."""

    template_fields = ("title",)
    told: ClassVar[list] = []

    def __init__(self, title: str, fail: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.title, self.fail = title, fail

    def notify(self, context):
        if self.fail:
            raise ConnectionError("pager unreachable")
        Recorder.told.append((self.title, context["notification"]))


RECORDER = f"{__name__}.Recorder"
REFUSED = {"day": "2026-02-03", "outcome": "data rejected", "verdict": "refused: language {{ 7 * 7 }} <b>x</b>"}


@pytest.fixture
def recorder():
    Recorder.told.clear()
    yield Recorder.told
    Recorder.told.clear()


def _told(spec, **notifications):
    return spec_variant(spec, notifications=notifications)


def test_a_notifier_named_by_its_class_renders_its_own_template_and_the_log_stays_text(support_bot, recorder):
    spec = _told(support_bot, notifiers=[{"notifier": RECORDER, "kwargs": {"title": "{{ notification.subject }}!"}}])
    message = message_for(spec, REFUSED, "http://airflow/dags/d/runs/r", "s3://b/report.html")
    assert send(spec.notifications, message, {}) == [RECORDER]
    ((title, notification),) = recorder
    assert title == "[support-bot] 2026-02-03: data rejected!"
    assert "{{ 7 * 7 }}" in notification["text"]  # a log is never a template
    assert "49" not in notification["text"]
    assert notification["url"] == "http://airflow/dags/d/runs/r"


def test_one_channel_failing_leaves_the_others_told_and_names_itself(support_bot, recorder):
    spec = _told(support_bot, notifiers=[{"notifier": RECORDER, "kwargs": {"title": "a", "fail": True}},
                                         {"notifier": "json.JSONDecoder"},
                                         {"notifier": "no_such_module.Notifier"},
                                         {"notifier": RECORDER, "kwargs": {"title": "b"}}])  # fmt: skip
    message = message_for(spec, REFUSED, "u", "s3://r")
    with pytest.raises(NotificationFailed) as failed:
        send(spec.notifications, message, {})
    assert [title for title, _ in recorder] == ["b"]
    said = str(failed.value)
    assert "pager unreachable" in said
    assert "'json.JSONDecoder' is not an Airflow notifier class" in said
    assert "cannot import 'no_such_module.Notifier'" in said


def test_the_deadline_callback_tells_every_channel_which_run_is_late(support_bot, recorder):
    spec = _told(support_bot, notifiers=[{"notifier": RECORDER, "kwargs": {"title": "{{ notification.subject }}"}}])
    context = {"dag_run": {"dag_run_id": "scheduled__2026-02-03T00:00:00+00:00"},
               "deadline": {"deadline_time": "2026-02-04T08:00:00+00:00"}}  # fmt: skip
    said = asyncio.run(deadline_missed(spec.agent_id, spec.dag_id, "http://airflow", spec.notifications.model_dump(),
                                       context=context))  # fmt: skip
    assert said == f"told {RECORDER}"
    ((title, notification),) = recorder
    assert title == "[support-bot] run late: scheduled__2026-02-03T00:00:00+00:00"
    assert notification["event"] == "deadline_missed"
    assert "2026-02-04T08:00:00+00:00" in notification["text"]
    assert notification["url"].startswith("http://airflow/dags/retrain_support-bot/runs/scheduled__2026-02-03")


@pytest.mark.parametrize(
    ("notifications", "field"),
    [
        ({"notifiers": [{"notifier": "not a path"}]}, "notifiers.0.notifier"),
        ({"notifiers": [{"notifier": "os.system;rm"}]}, "notifiers.0.notifier"),
        ({"slack": ["hooks/../x"]}, "slack.0"),
        ({"on": ["sometimes"]}, "on.0"),
        ({"deadline_hours": 0}, "deadline_hours"),
    ],
)
def test_a_notification_setting_that_cannot_work_is_refused_naming_its_field(support_bot, notifications, field):
    with pytest.raises(ValueError, match=re.escape(field)):
        _told(support_bot, **notifications)
