"""A real Airflow deployment for a test module: its own Postgres database, api-server,
scheduler and dag-processor (plus Celery workers when asked), all on this machine.

The metadata database is created for the module and dropped afterwards, so the
machine's Postgres is left as it was found. The api-server has one user,
`operator`, with the simple auth manager's "user" role (enough to trigger runs and
answer approvals, not to administer); tests call the public REST API as that user.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-tA"]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
OPERATOR = "operator"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_or_kill(process: subprocess.Popen, timeout: float) -> None:
    """Wait for a server sent SIGTERM (started with `start_new_session`) to end; past `timeout`, SIGKILL its group."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class AirflowCluster:
    home: Path
    database: str
    env: dict[str, str]
    api_url: str
    password: str  # the operator's
    processes: list = field(default_factory=list)
    token: str | None = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} exited {result.returncode}: {result.stderr[-3000:]}")
        return result

    def sql(self, query: str) -> list[list[str]]:
        result = subprocess.run([*PSQL, "-d", self.database, "-F", "\t", "-c", query], check=True,
                                capture_output=True, text=True)  # fmt: skip
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    def start(self, name: str, *args: str, cwd: Path | None = None, **extra_env: str) -> None:
        log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        process = subprocess.Popen([AIRFLOW, *args], env={**self.env, **extra_env}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)  # fmt: skip
        self.processes.append((name, process, log))

    def stop(self) -> None:
        for _, process, _ in self.processes:
            os.killpg(process.pid, signal.SIGTERM)
        for _, process, log in self.processes:
            wait_or_kill(process, timeout=30)
            log.close()

    def api(self, method: str, path: str, body: dict | None = None) -> Any:
        """Call the public REST API (`/api/v2/<path>`) as the operator, with a JWT from `/auth/token`."""
        if self.token is None:
            login = httpx.post(f"{self.api_url}/auth/token", json={"username": OPERATOR, "password": self.password})
            login.raise_for_status()
            self.token = login.json()["access_token"]
        response = httpx.request(method, f"{self.api_url}/api/v2/{path}", json=body, timeout=30,
                                 headers={"Authorization": f"Bearer {self.token}"})  # fmt: skip
        if response.is_error:
            raise AssertionError(f"{method} /api/v2/{path} answered {response.status_code}: {response.text}")
        return response.json()

    def api_ready(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).is_success
        except httpx.TransportError:
            return False

    def runs(self, dag_id: str) -> list[dict]:
        """The DAG's runs with their run type (the run id's prefix); the CLI may log warnings before its JSON."""
        result = self.cli("dags", "list-runs", dag_id, "-o", "json", check=False)
        listing = [line for line in result.stdout.splitlines() if line.startswith("[")]
        runs = json.loads(listing[-1]) if result.returncode == 0 and listing else []
        return [{**run, "run_type": run["run_id"].split("__", 1)[0]} for run in runs]

    def wait_until(self, check: Callable[[], Any], what: str, timeout: float = 480, every: float = 5) -> Any:
        """What `check` returns once it is truthy; past the timeout, fail with the tail of every process's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if result := check():
                return result
            time.sleep(every)
        logs = "\n".join(
            f"--- {name}\n" + (self.home / f"{name}.log").read_text()[-2000:] for name, _, _ in self.processes
        )
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def wait_for(self, dag_id: str, condition: Callable[[list[dict]], bool], what: str, timeout: float = 480):
        def check():
            runs = self.runs(dag_id)
            return runs if condition(runs) else None

        try:
            return self.wait_until(check, what, timeout)
        except AssertionError as timed_out:
            raise AssertionError(f"{timed_out}\nruns: {self.runs(dag_id)}") from None

    def finished_scheduled_run(self, dag_id: str) -> dict:
        """The first run the scheduler created on its own (the nightly one), once it has finished."""
        runs = self.wait_for(
            dag_id, lambda rs: any(r["run_type"] == "scheduled" and r["state"] in ("success", "failed") for r in rs),
            "the scheduled run",
        )  # fmt: skip
        return next(r for r in runs if r["run_type"] == "scheduled")


def day_of(run: dict) -> date:
    """The day of logs a scheduled or backfill run owns: its logical date is its data interval's start."""
    return datetime.fromisoformat(run["logical_date"]).date()


def start_cluster(home: Path, spec, executor: str = "LocalExecutor", triggerer: bool = False,
                  **extra_env: str) -> AirflowCluster:  # fmt: skip
    """Migrate a fresh database and start api-server, scheduler and dag-processor that see only `spec`'s DAG
    (and, with `triggerer`, a triggerer: deadline alerts run their callbacks there)."""
    specs = home / "agents"
    specs.mkdir()
    (specs / f"{spec.agent_id}.yaml").write_text(yaml.safe_dump(spec.model_dump()))
    database = f"airflow_test_{spec.agent_id.replace('-', '_')}_{os.getpid()}"
    subprocess.run([*PSQL, "-c", f"CREATE DATABASE {database}"], check=True, capture_output=True)
    port = free_port()
    password = secrets.token_hex(12)
    passwords = home / "passwords.json"  # the simple auth manager takes a user's password from this file
    passwords.write_text(json.dumps({OPERATOR: password}))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AGENT_SPECS_DIR": str(specs),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}",
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{OPERATOR}:user",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        # Celery's results go to the same throw-away database (ignored by other executors)
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://postgres@127.0.0.1:5432/{database}",
        **extra_env,
    }
    cluster = AirflowCluster(home, database, env, f"http://127.0.0.1:{port}", password)
    migrated = cluster.cli("db", "migrate", check=False)
    if migrated.returncode != 0:
        drop_cluster(cluster)
        raise AssertionError(f"airflow db migrate failed: {migrated.stderr[-3000:]}")
    cluster.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port))
    cluster.start("scheduler", "scheduler")
    cluster.start("dag-processor", "dag-processor")
    if triggerer:
        cluster.start("triggerer", "triggerer")
    cluster.wait_until(cluster.api_ready, "the api-server to answer", timeout=120, every=1)
    return cluster


def drop_cluster(cluster: AirflowCluster) -> None:
    cluster.stop()
    subprocess.run([*PSQL, "-c", f"DROP DATABASE IF EXISTS {cluster.database} WITH (FORCE)"], check=True,
                   capture_output=True)  # fmt: skip
