"""Sending a message through the Airflow notifiers an agent's spec names: e-mail (SMTP), Slack (incoming
webhooks), and any notifier class, so a team hears about its agent where it already hears about everything else.

The pipeline writes the message (notifications.py); Airflow's notifiers carry it. Our own channels get the text
as it is and are never rendered as templates: a verdict quotes logged values, and a `{{` in a log stays text. A
notifier named by its class renders its own templated fields, written in the spec, with the message as
`notification` in the context: the message is data there, never template source.

One channel failing does not keep the others silent: every channel is tried, then the failures are raised
together, so the task's retry (or the triggerer's log) names each one.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import TYPE_CHECKING, Any

from agent_retraining.spec import Notifications, Notifier
from agent_retraining.views.notifications import Message, deadline_message, run_url

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)


class NotificationFailed(RuntimeError):
    """Some channels could not be told; the message names each and why."""


def _named(named: Notifier) -> BaseNotifier:
    from airflow.sdk import BaseNotifier

    module, _, name = named.notifier.rpartition(".")
    try:
        notifier_class = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise NotificationFailed(f"notifications.notifiers: cannot import {named.notifier!r}: {exc}") from exc
    if not (isinstance(notifier_class, type) and issubclass(notifier_class, BaseNotifier)):
        raise NotificationFailed(f"notifications.notifiers: {named.notifier!r} is not an Airflow notifier class "
                                 "(a subclass of airflow.sdk.BaseNotifier)")  # fmt: skip
    return notifier_class(**named.kwargs)


def _channels(notifications: Notifications, message: Message) -> tuple[list[tuple[str, Any]], list[str]]:
    """(who, notifier) for every channel that could be built, and why each other one could not."""
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    channels: list[tuple[str, Any]] = []
    failures: list[str] = []
    if notifications.email:
        email = SmtpNotifier(to=notifications.email, subject=message.subject, html_content=message.html)
        channels.append((f"e-mail to {', '.join(notifications.email)}", email))
    channels += [(f"Slack ({conn_id})", SlackWebhookNotifier(slack_webhook_conn_id=conn_id, text=message.text))
                 for conn_id in notifications.slack]  # fmt: skip
    for named in notifications.notifiers:
        try:
            channels.append((named.notifier, _named(named)))
        except (NotificationFailed, TypeError) as exc:  # TypeError: kwargs the class does not take
            failures.append(f"{named.notifier}: {exc}")
    return channels, failures


def _with_message(notifier, context: dict, message: Message) -> dict:
    """The context a class named in the spec renders its templated fields with; our own channels skip this."""
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    context = {**context, "notification": message.fields()}
    if not isinstance(notifier, SmtpNotifier | SlackWebhookNotifier):
        notifier.render_template_fields(context)
    return context


def _raise_failures(failures: list[str], event: str) -> None:
    if failures:
        raise NotificationFailed(f"{event}: " + "; ".join(failures))


def send(notifications: Notifications, message: Message, context: dict) -> list[str]:
    """Tell every channel (in a task); the channels told, or NotificationFailed naming those that were not."""
    (channels, failures), told = _channels(notifications, message), []
    for who, notifier in channels:
        try:
            notifier.notify(_with_message(notifier, context, message))
            told.append(who)
        except Exception as exc:  # noqa: BLE001 - one channel's failure must not silence the others
            failures.append(f"{who}: {exc}")
    _raise_failures(failures, message.event)
    return told


async def _tell(notifier, context: dict, message: Message) -> None:
    from airflow.sdk import BaseNotifier

    context = _with_message(notifier, context, message)
    if type(notifier).async_notify is BaseNotifier.async_notify:  # a notifier with no async side
        await asyncio.to_thread(notifier.notify, context)
    else:
        await notifier.async_notify(context)


async def deadline_missed(agent_id: str, dag_id: str, base_url: str, notifications: dict, context=None) -> str:
    """The DeadlineAlert's callback, run by the triggerer: a run still going at its deadline is told on every
    channel of the agent's spec. Its arguments were fixed when the DAG was built (the triggerer reads no spec)."""
    context = context or {}
    run = context.get("dag_run") or {}  # the REST API's DAGRunResponse, as Airflow passes it
    run_id = str(run.get("dag_run_id", "unknown run"))
    deadline = str((context.get("deadline") or {}).get("deadline_time", "its deadline"))
    message = deadline_message(agent_id, run_id, deadline, run_url(base_url, dag_id, run_id))
    (channels, failures), told = _channels(Notifications.model_validate(notifications), message), []
    for who, notifier in channels:
        try:
            await _tell(notifier, context, message)
            told.append(who)
        except Exception as exc:  # noqa: BLE001 - as in send()
            failures.append(f"{who}: {exc}")
    log.warning("%s; told: %s", message.subject, ", ".join(told) or "nobody")
    _raise_failures(failures, message.event)
    return f"told {', '.join(told)}"
