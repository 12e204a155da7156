"""One night of an agent's retraining DAG, run in-process with `dag.test()`, as `make retrain`, `make demo` and
`make loop` run it: one line per task as it ends (its duration and state), Airflow's own log in a file.

`dag.test()` records a run's logical date as its start and names it after the wall clock, so Airflow's UI showed a
30-second run of a past day as lasting months; the runner sets the run's real start and end afterwards.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

from airflow.listeners import hookimpl

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "retrain_agents.py"


def load_dag(dag_id: str):
    module_spec = importlib.util.spec_from_file_location("retrain_agents_dags", DAG_FILE)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, dag_id):
        raise SystemExit(f"no DAG {dag_id} in {DAG_FILE}; is include/agents/<agent_id>.yaml there?")
    return getattr(module, dag_id)


def _task_name(task_instance) -> str:
    index = getattr(task_instance, "map_index", -1)
    return task_instance.task_id + (f"[{index}]" if index is not None and index >= 0 else "")


class TaskLines:
    """An Airflow listener that prints one line per finished task to the terminal the run was started from."""

    def __init__(self, out):
        self.out, self.started = out, {}

    def _line(self, task_instance, state: str) -> None:
        name = _task_name(task_instance)
        seconds = time.monotonic() - self.started.pop(name, time.monotonic())
        self.out.write(f"  {name:<28} {state:<8} {seconds:6.1f} s\n")
        self.out.flush()

    @hookimpl
    def on_task_instance_running(self, previous_state, task_instance):
        self.started[_task_name(task_instance)] = time.monotonic()

    @hookimpl
    def on_task_instance_success(self, previous_state, task_instance):
        self._line(task_instance, "success")

    @hookimpl
    def on_task_instance_failed(self, previous_state, task_instance, error):
        self._line(task_instance, "failed")

    @hookimpl
    def on_task_instance_skipped(self, previous_state, task_instance):
        self._line(task_instance, "skipped")


@contextlib.contextmanager
def _output_to(log_file: Path):
    """Everything written to stdout and stderr (Airflow's log included) goes to `log_file`; yields the terminal."""
    terminal = os.fdopen(os.dup(1), "w")  # the process's stdout (sys.stdout may be a capture without a file)
    sys.stdout.flush(), sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log_file, "ab") as log:
        os.dup2(log.fileno(), 1), os.dup2(log.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            for descriptor in saved:
                os.close(descriptor)
            terminal.close()


def _record_real_times(dag_run, started: datetime, ended: datetime) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagRun).filter(DagRun.id == dag_run.id).update({"start_date": started, "end_date": ended})


def run_night(spec, day: date, log_file: Path | None = None):
    """The agent's DAG for the data interval [day, day + 1); the run and its report (or None).

    With `log_file`, Airflow's log goes there and each task prints one line as it ends; without, everything is
    printed as Airflow prints it.
    """
    from airflow.sdk.listener import get_listener_manager

    from agent_retraining.contract import run_prefix
    from agent_retraining.storage import buckets_from_env, read_json_or_none, s3_client_from_env

    dag = load_dag(spec.dag_id)
    # A manual run covers the latest whole interval before its logical date: the end of the day to retrain on.
    logical_date = datetime.combine(day + timedelta(days=1), clock(), UTC)
    started = datetime.now(UTC)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    with _output_to(log_file) if log_file else contextlib.nullcontext() as terminal:
        lines = TaskLines(terminal) if terminal else None
        if lines:
            get_listener_manager().add_listener(lines)
        try:
            dag_run = dag.test(logical_date=logical_date)
        finally:
            if lines:
                get_listener_manager().pm.unregister(lines)
        _record_real_times(dag_run, started, datetime.now(UTC))
        run_dir = run_prefix(spec.agent_id, day, dag_run.run_id)
        report = read_json_or_none(s3_client_from_env(), buckets_from_env().artifacts, run_dir + "report.json")
    return dag_run, report
