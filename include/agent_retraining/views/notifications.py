"""What an operator is told when a run ends: the verdict's sentence and a link, on the outcomes the spec names.

An operator should not have to open the UI to learn that last night's run was
refused or deployed. The message is built here from the run's report, plain and
escaped (a refusal quotes values from the logs); sending it is Airflow's
notifiers' job (the DAG's `notify` task).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from markupsafe import Markup

from agent_retraining.spec import AgentSpec


def event_of(outcome: str) -> str:
    """The notification event a report's outcome is (see `Notifications.on` in the spec)."""
    if outcome in ("deployed", "canary started"):
        return "deployed"
    if outcome == "data rejected":
        return "data_rejected"
    if outcome.startswith("kept champion"):
        return "kept_champion"
    return "failed"  # a stage failed before the decision, or the deploy was refused


def run_url(base_url: str, dag_id: str, run_id: str) -> str:
    """The run's page in Airflow 3's UI."""
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


@dataclass(frozen=True)
class Message:
    event: str
    subject: str
    text: str  # plain, for chat: the verdict and the link
    html: str  # escaped: the verdict quotes values from the logs
    url: str  # the run in Airflow

    def fields(self) -> dict[str, str]:
        """What a notifier named by its class sees in its templates as `notification`."""
        return {"event": self.event, "subject": self.subject, "text": self.text, "url": self.url}


def _message(event: str, subject: str, sentence: str, url: str, report_uri: str | None) -> Message:
    where = f"; its report: {report_uri}" if report_uri else ""
    html = Markup('<p>{}</p><p><a href="{}">The run in Airflow</a>{}</p>').format(sentence, url, where)
    return Message(event, subject, f"{subject}\n{sentence}\nThe run in Airflow: {url}{where}", str(html), url)


def message_for(spec: AgentSpec, report: dict, url: str, report_uri: str) -> Message | None:
    """The message for this run's outcome, or None when the spec does not ask to hear about it."""
    event = event_of(report["outcome"])
    if not spec.notifications.channels or event not in spec.notifications.on:
        return None
    return _message(event, f"[{spec.agent_id}] {report['day']}: {report['outcome']}", report["verdict"], url,
                    report_uri)  # fmt: skip


def deadline_message(agent_id: str, run_id: str, deadline_time: str, url: str) -> Message:
    """What a run still unfinished at its deadline says: which run, since when, and where to look."""
    sentence = (
        f"The retraining run {run_id} of {agent_id} had not finished by its deadline, {deadline_time}: a task may "
        "be waiting for logs, queued, or slow. The live model is unchanged until it finishes."
    )
    return _message("deadline_missed", f"[{agent_id}] run late: {run_id}", sentence, url, None)
