"""Static checks of the production stack: docker-compose.yaml, Dockerfile, .env.example.

Nothing is started: the files are read as text / YAML. PyYAML's safe_load applies
the `&anchor` / `*alias` / `<<:` merges, so each service is checked as compose
sees it. Values are `${VAR}`-interpolated the way compose does it (the `$$`
escape included) where a check needs the effective value.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"

# Services the README's "Production: docker compose" section describes.
README_SERVICES = {
    "postgres",
    "redis",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
    "minio",
    "minio-setup",
    "s3-access",
}
DAG_BUCKET_VARS = ("LOGS_BUCKET", "MODELS_BUCKET", "ARTIFACTS_BUCKET")
DEFAULT_S3_CONN_ID = "agent_s3"
AIRFLOW_HOME = "/opt/airflow"
CODE_DIRS = ("dags", "include", "plugins")

# `$$` (a literal `$`), `${NAME}`, `${NAME<op><arg>}` with op one of :- - :? ? :+ +, and `$NAME`.
_REF = re.compile(
    r"\$\$"
    r"|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)
_WHOLE_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
_CREDENTIAL_NAME = re.compile(r"PASSWORD|SECRET|KEY|FERNET|TOKEN")
_BARE_REF = re.compile(r'(?<!")\$\{[^}]*\}(?!")')


# --- helpers ----------------------------------------------------------------


def _compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _services() -> dict[str, dict]:
    services = _compose().get("services")
    assert isinstance(services, dict), "docker-compose.yaml has no `services` mapping"
    assert services, "docker-compose.yaml has no services"
    return services


def _airflow_services() -> dict[str, dict]:
    services = {name: svc for name, svc in _services().items() if name.startswith("airflow-")}
    assert services, "docker-compose.yaml has no airflow-* service"
    return services


def _environment(service: dict) -> dict[str, str | None]:
    """A service's `environment`, as a dict (compose also allows a list of KEY=VALUE)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in env)
        return {key: value for key, value in pairs}
    return {key: (None if value is None else str(value)) for key, value in env.items()}


def _env_example() -> dict[str, str]:
    """KEY=VALUE lines of .env.example (comments, blank lines and `export ` ignored)."""
    values = {}
    for raw in ENV_EXAMPLE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        assert "=" in line, f".env.example: not a KEY=VALUE line: {raw!r}"
        key, value = (part.strip() for part in line.split("=", 1))
        if value[:1] in ("'", '"') and value.endswith(value[0]) and len(value) >= 2:
            value = value[1:-1]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        values[key] = value
    return values


def _strings(node):
    """Every string value in a parsed YAML tree (mapping keys are not interpolated by compose)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _references(text: str):
    """(name, op, arg) of each interpolation in a compose string; op is None for `${X}` / `$X`."""
    for match in _REF.finditer(text):
        if match.group(0) == "$$":
            continue
        if match.group("bare"):
            yield match.group("bare"), None, None
        else:
            yield match.group("braced"), match.group("op"), match.group("arg")


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation of one string; raises KeyError where compose would refuse (`:?`/`?`)."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("bare") or match.group("braced")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        is_set = value is not None
        is_set_nonempty = is_set and value != ""
        present = is_set_nonempty if (op or "").startswith(":") else is_set
        if op in (":+", "+"):
            return arg if present else ""
        if present:
            return value
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            raise KeyError(f"{name} ({arg})")
        return ""

    return _REF.sub(replace, text)


def _image_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None when it has an explicit tag or digest."""
    if "@" in image:
        digest = image.split("@", 1)[1]
        return None if re.fullmatch(r"sha256:[0-9a-f]{64}", digest) else f"bad digest {digest!r}"
    last = image.rsplit("/", 1)[-1]  # a registry's `host:port/` is not a tag
    if ":" not in last:
        return "no tag (means `latest`)"
    tag = last.split(":", 1)[1]
    if not tag:
        return "empty tag"
    if tag.lower() == "latest":
        return "tag `latest`"
    return None


def _mounts(service: dict) -> dict[str, str]:
    """{normalized source: container target} of a service's volumes (short and long syntax)."""
    mounts = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            source, target = volume.get("source", ""), volume.get("target", "")
        else:
            parts = str(volume).split(":")
            if len(parts) < 2:  # anonymous volume
                continue
            source, target = parts[0], parts[1]
        source = source.rstrip("/")
        if source.startswith("./"):
            source = source[2:]
        mounts[source] = target.rstrip("/")
    return mounts


def _code_targets(service: dict) -> dict[str, str]:
    """Where dags/, include/ and plugins/ of the repo are mounted in a service."""
    mounts = _mounts(service)
    return {name: mounts.get(name) for name in CODE_DIRS}


def _dockerfile(service: dict) -> Path | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        return REPO / build / "Dockerfile"
    return REPO / build.get("context", ".") / build.get("dockerfile", "Dockerfile")


def _dockerfile_final_stage(path: Path) -> tuple[str | None, dict[str, str]]:
    """(FROM image, ENV values) of a Dockerfile's final stage (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    base, env = None, {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = [word for word in rest.split() if not word.startswith("--")]
            base, env = words[0], {}
        elif instruction == "ENV":
            words = shlex.split(rest, comments=False)
            if words and "=" in words[0]:
                env.update(word.split("=", 1) for word in words)
            elif words:
                env[words[0]] = " ".join(words[1:])
    return base, env


def _host_port(url: str) -> tuple[str | None, int | None]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def _readme_compose_section() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"^## Production: docker compose\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, 'README.md has no "## Production: docker compose" section'
    return match.group(1)


def _s3_conn_id() -> str:
    source = (REPO / "include" / "retraining_runtime.py").read_text()
    match = re.search(r"^S3_CONN_ID\s*=\s*[\"']([^\"']+)[\"']", source, re.M)
    return match.group(1) if match else DEFAULT_S3_CONN_ID


def _conn_fields(value: str) -> dict:
    """An AIRFLOW_CONN_* value (JSON or URI form) as {conn_type, login, password, host, extra}. In the JSON form a
    reference outside quotes (`"disable_ssl": ${SMTP_DISABLE_SSL:-true}`) is a JSON boolean or number that compose
    fills in: it reads as null."""
    if value.lstrip().startswith("{"):
        data = json.loads(_BARE_REF.sub("null", value))
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra)
        return {**data, "extra": extra}
    parts = urlsplit(value)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    extra = json.loads(query.pop("__extra__")) if "__extra__" in query else query
    return {
        "conn_type": parts.scheme.replace("-", "_"),
        "login": parts.username,
        "password": parts.password,
        "host": parts.hostname,
        "extra": extra,
    }


def _is_secret_reference(value: str | None) -> bool:
    """True when a value is one `${VAR}` / `${VAR:?msg}` reference with no literal default."""
    match = _WHOLE_REF.fullmatch(value or "")
    return bool(match) and match.group("op") in (None, ":?", "?")


# --- 1. services ------------------------------------------------------------


def test_readme_services_exist():
    section = _readme_compose_section()
    named = set()
    for code in re.findall(r"`([^`]+)`", section):
        named.update(
            re.findall(r"(?<![\w/.-])(airflow-[a-z-]*[a-z]|minio(?:-[a-z]+)*|postgres|redis)(?![\w.:/-])", code)
        )
    expected = README_SERVICES | named
    missing = sorted(expected - set(_services()))
    assert not missing, f"services named in README.md but missing from docker-compose.yaml: {missing}"


# --- 2. pinned images ---------------------------------------------------------


def test_images_are_pinned():
    env_example = _env_example()
    problems = []
    for name, service in _services().items():
        image = service.get("image")
        if image is None:
            if service.get("build") is None:
                problems.append(f"{name}: neither image nor build")
            continue
        # Pinned both with compose's defaults alone and with the values .env.example documents.
        for label, env in (("defaults", {}), (".env.example", env_example)):
            try:
                resolved = _interpolate(str(image), env)
            except KeyError as missing:
                problems.append(f"{name}: image {image!r} needs {missing} ({label})")
                continue
            problem = _image_problem(resolved)
            if problem:
                problems.append(f"{name}: image {resolved!r} ({label}): {problem}")
    assert not problems, "\n".join(problems)


def test_dockerfile_base_image_is_pinned():
    dockerfiles = {_dockerfile(service) for service in _services().values()} - {None}
    assert dockerfiles, "no service builds from a Dockerfile"
    for path in dockerfiles:
        assert path.is_file(), f"{path} (a service's build) does not exist"
        base, _ = _dockerfile_final_stage(path)
        assert base, f"{path}: no FROM"
        problem = _image_problem(base)
        assert problem is None, f"{path}: FROM {base}: {problem}"


# --- 3. one Airflow configuration ---------------------------------------------


def test_airflow_services_share_one_config():
    services = _airflow_services()
    common = {name: _environment(service) for name, service in services.items()}
    all_keys = set().union(*(env.keys() for env in common.values()))
    broker_keys = sorted(key for key in all_keys if re.fullmatch(r"AIRFLOW__CELERY__BROKER_URL(_CMD|_SECRET)?", key))
    jwt_keys = sorted(key for key in all_keys if re.fullmatch(r"AIRFLOW__API_AUTH__JWT_SECRET(_CMD|_SECRET)?", key))
    assert broker_keys, "no AIRFLOW__CELERY__BROKER_URL in any Airflow service"
    assert jwt_keys, "no AIRFLOW__API_AUTH__JWT_SECRET in any Airflow service"
    keys = [
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        *broker_keys,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        *jwt_keys,
        # Also shared by necessity: the Fernet key decrypts what another component encrypted;
        # the API secret key signs the api-server's requests for logs to the workers.
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API__SECRET_KEY",
    ]
    problems = []
    for key in keys:
        values = {name: env.get(key) for name, env in common.items()}
        unset = sorted(name for name, value in values.items() if not value)
        if unset:
            problems.append(f"{key} not set in {unset}")
        if len(set(values.values())) > 1:
            problems.append(f"{key} differs: {values}")
    for field in ("image", "build"):
        values = {name: json.dumps(service.get(field), sort_keys=True) for name, service in services.items()}
        if len(set(values.values())) > 1:
            problems.append(f"`{field}` differs: {values}")
    if all(service.get("image") is None and service.get("build") is None for service in services.values()):
        problems.append("Airflow services have neither image nor build")
    assert not problems, "\n".join(problems)


def test_airflow_services_mount_the_code():
    problems = []
    targets = {name: _code_targets(service) for name, service in _airflow_services().items()}
    for name, mounted in targets.items():
        env = _environment(_airflow_services()[name])
        expected = {
            "dags": env.get("AIRFLOW__CORE__DAGS_FOLDER") or f"{AIRFLOW_HOME}/dags",
            "plugins": env.get("AIRFLOW__CORE__PLUGINS_FOLDER") or f"{AIRFLOW_HOME}/plugins",
        }
        for directory in CODE_DIRS:
            if not mounted[directory]:
                problems.append(f"{name}: ./{directory} is not mounted")
            elif directory in expected and mounted[directory] != expected[directory].rstrip("/"):
                problems.append(
                    f"{name}: ./{directory} mounted at {mounted[directory]}, Airflow reads {expected[directory]}"
                )
    if len({json.dumps(mounted, sort_keys=True) for mounted in targets.values()}) > 1:
        problems.append(f"code mounted in different places: {targets}")
    assert not problems, "\n".join(problems)


def test_airflow_reaches_services_of_the_stack():
    services = _services()
    env_example = _env_example()
    problems = []
    for name, service in _airflow_services().items():
        env = _environment(service)
        for key in (
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
            "AIRFLOW__CELERY__BROKER_URL",
            "AIRFLOW__CELERY__RESULT_BACKEND",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        ):
            if not env.get(key):
                problems.append(f"{name}: {key} not set")
                continue
            host, _ = _host_port(_interpolate(env[key], env_example))
            if host not in services:
                problems.append(f"{name}: {key} points at {host!r}, not a service of this file")
        api_host, api_port = _host_port(_interpolate(env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") or "", {}))
        if api_host in services and "api-server" not in str(services[api_host].get("command")):
            problems.append(f"{name}: the execution API URL points at {api_host}, which does not run `api-server`")
        if api_port not in (None, 8080):
            problems.append(f"{name}: the execution API URL uses port {api_port}; the api-server listens on 8080")
    assert not problems, "\n".join(problems)


# --- 4. what the DAGs need ----------------------------------------------------


def test_dag_environment_is_set():
    conn_var = f"AIRFLOW_CONN_{_s3_conn_id().upper()}"
    problems = []
    for name, service in _airflow_services().items():
        env = _environment(service)
        for key in dict.fromkeys((*DAG_BUCKET_VARS, "AIRFLOW_CONN_AGENT_S3", conn_var)):
            if not env.get(key):
                problems.append(f"{name}: {key} not set")
    assert not problems, "\n".join(problems)


def test_agent_s3_connection_points_at_minio():
    services = _services()
    minio = {}  # service name -> API port
    for name, service in services.items():
        image = _interpolate(str(service.get("image") or ""), {})
        if image.split("@")[0].rsplit("/", 1)[-1].split(":")[0] == "minio":
            command = service.get("command") or ""
            command = " ".join(command) if isinstance(command, list) else str(command)
            address = re.search(r"--address[= ]\"?[^:\s\"]*:(\d+)", command)
            minio[name] = int(address.group(1)) if address else 9000
    assert minio, "no MinIO service in docker-compose.yaml"
    root_vars = set()
    for name in minio:
        for key in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
            root_vars.update(ref[0] for ref in _references(_environment(services[name]).get(key) or ""))
    env_example = _env_example()
    problems = []
    for name, service in _airflow_services().items():
        raw = _environment(service).get("AIRFLOW_CONN_AGENT_S3")
        if not raw:
            problems.append(f"{name}: AIRFLOW_CONN_AGENT_S3 not set")
            continue
        if "endpoint_url" not in raw:
            problems.append(f"{name}: AIRFLOW_CONN_AGENT_S3 has no endpoint_url")
            continue
        try:
            conn = _conn_fields(_interpolate(raw, env_example))
        except (ValueError, KeyError) as error:
            problems.append(f"{name}: AIRFLOW_CONN_AGENT_S3 does not parse: {error}")
            continue
        if conn.get("conn_type") != "aws":
            problems.append(f"{name}: AIRFLOW_CONN_AGENT_S3 conn_type is {conn.get('conn_type')!r}, S3Hook needs 'aws'")
        host, port = _host_port(str(conn["extra"].get("endpoint_url", "")))
        if host not in minio:
            problems.append(f"{name}: endpoint_url host {host!r} is not the MinIO service {sorted(minio)}")
        elif (port or 80) != minio[host]:
            problems.append(f"{name}: endpoint_url port {port} but MinIO's API listens on {minio[host]}")
        used = {ref[0] for ref in _references(raw)}
        if used & root_vars:
            problems.append(f"{name}: AIRFLOW_CONN_AGENT_S3 uses MinIO's root credentials {sorted(used & root_vars)}")
    assert not problems, "\n".join(problems)


def test_pythonpath_makes_include_importable():
    problems = []
    for name, service in _airflow_services().items():
        include = _code_targets(service)["include"]
        if not include:
            problems.append(f"{name}: ./include is not mounted")
            continue
        pythonpath = _environment(service).get("PYTHONPATH")  # compose's environment wins over the image's ENV
        source = "compose"
        if pythonpath is None:
            dockerfile = _dockerfile(service)
            if dockerfile is None or not dockerfile.is_file():
                problems.append(f"{name}: PYTHONPATH not set in compose and no Dockerfile of its own")
                continue
            pythonpath = _dockerfile_final_stage(dockerfile)[1].get("PYTHONPATH", "")
            source = dockerfile.name
        entries = [entry.rstrip("/") for entry in _interpolate(pythonpath, {}).split(":")]
        if include not in entries:
            problems.append(f"{name}: PYTHONPATH {pythonpath!r} ({source}) lacks {include}, where ./include is mounted")
    assert not problems, "\n".join(problems)


# --- 5. Celery ----------------------------------------------------------------


def test_celery_executor_with_two_workers():
    problems = []
    for name, service in _airflow_services().items():
        executor = _environment(service).get("AIRFLOW__CORE__EXECUTOR")
        if executor != "CeleryExecutor":
            problems.append(f"{name}: AIRFLOW__CORE__EXECUTOR is {executor!r}")
    workers = {}
    for name, service in _services().items():
        command = service.get("command") or ""
        command = " ".join(command) if isinstance(command, list) else str(command)
        if re.search(r"\bcelery\s+worker\b", command):
            replicas = (service.get("deploy") or {}).get("replicas", service.get("scale", 1))
            workers[name] = int(replicas)
    if sum(workers.values()) < 2:
        problems.append(f"fewer than two Celery workers: {workers or 'none'}")
    assert not problems, "\n".join(problems)


# --- 6. no credentials in committed files -------------------------------------


def _url_password(value: str) -> str | None:
    """The password of a `scheme://user:password@host` value (a `${...}` reference kept whole)."""
    match = re.search(r"://[^:@/]*:(?P<password>\$\{[^}]*\}|[^@/]*)@", value)
    return match.group("password") if match else None


def _credential_values(env: dict[str, str | None]) -> dict[str, str]:
    """The credentials in one environment block: where each sits -> its (uninterpolated) value."""
    found = {}
    for key, value in env.items():
        if not value:
            continue
        # *_FILE / *_CMD name where a secret lives or how to get it, not the secret itself.
        if _CREDENTIAL_NAME.search(key.upper()) and not re.search(r"_(FILE|CMD)$", key.upper()):
            found[key] = value
        password = _url_password(value)
        if password:
            found[f"{key} (URL password)"] = password
        if key.startswith("AIRFLOW_CONN_"):
            try:
                conn = _conn_fields(value)
            except (ValueError, KeyError):
                found[f"{key} (unparsable connection)"] = value
                continue
            for field in ("login", "password"):
                if conn.get(field):
                    found[f"{key} {field}"] = str(conn[field])
    return found


def test_no_credential_literals_in_compose():
    compose = _compose()
    blocks = {name: _environment(service) for name, service in compose["services"].items()}
    for key, value in compose.items():
        if key.startswith("x-") and isinstance(value, dict) and "environment" in value:
            blocks[key] = _environment(value)
    problems = [
        f"{owner}: {where} = {value!r} is not a ${{VAR}} reference without a default"
        for owner, env in blocks.items()
        for where, value in _credential_values(env).items()
        if not _is_secret_reference(value)
    ]
    assert not problems, "\n".join(problems)


def test_env_example_holds_only_placeholder_secrets():
    values = _env_example()
    # Credential-like names, plus every variable a credential in the compose file is taken from.
    secret_vars = {key for key in values if _CREDENTIAL_NAME.search(key.upper())}
    for service in _services().values():
        for value in _credential_values(_environment(service)).values():
            secret_vars.update(name for name, _, _ in _references(value) if name in values)
    assert secret_vars, ".env.example defines no secret"
    real = {key: values[key] for key in sorted(secret_vars) if values[key] and "change-me" not in values[key].lower()}
    assert not real, f".env.example holds values that look like real secrets (use `change-me`): {real}"


def test_dotenv_is_not_committed():
    ignored = False
    for raw in (REPO / ".gitignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.endswith("/"):
            continue
        negate = line.startswith("!")
        pattern = line.removeprefix("!").removeprefix("/")
        if fnmatch.fnmatchcase(".env", pattern):
            ignored = not negate
    assert ignored, ".env is not ignored by .gitignore"
    if shutil.which("git") and (REPO / ".git").exists():
        tracked = subprocess.run(
            ["git", "ls-files", "--", ".env"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        assert not tracked, ".env is committed (ignored files that are already tracked stay tracked)"


# --- 7. every variable is documented -------------------------------------------


def test_compose_variables_are_defined_in_env_example():
    defined = _env_example()
    text = COMPOSE_FILE.read_text()
    needed, problems = {}, []
    for string in _strings(yaml.safe_load(text)):
        for name, op, _ in _references(string):
            if op not in (":-", "-", ":+", "+"):
                needed.setdefault(name, string)
        leftover = _REF.sub("", string)
        if "${" in leftover:
            problems.append(f"malformed interpolation in {string!r}")
    assert needed, "docker-compose.yaml references no variable: the parser is broken or secrets are inline"
    missing = sorted(name for name in needed if name not in defined)
    if missing:
        problems.append(f"variables without a default that .env.example does not define: {missing}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("postgres:16", True),
        ("quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z", True),
        ("localhost:5000/airflow", False),
        ("redis", False),
        ("redis:latest", False),
        ("redis@sha256:" + "a" * 64, True),
    ],
)
def test_image_pin_check_itself(image, pinned):
    assert (_image_problem(image) is None) is pinned


def _minio_setup_script() -> str:
    command = _services()["minio-setup"]["command"]
    return "\n".join(command) if isinstance(command, list) else str(command)


def test_services_that_only_read_get_a_read_only_s3_user():
    """The api-server (the Agent models page) and the dag-processor read S3 and never write it: their `agent_s3`
    is the reader user, whose policy grants GetObject and ListBucket only; the workers and the scheduler keep the
    pipeline's. tests/e2e/test_s3_access.py proves what each policy allows on a real S3 server."""
    from agent_retraining.s3_access import reader_policy
    from agent_retraining.storage import Buckets

    services = _airflow_services()
    login = {name: _WHOLE_REF.fullmatch(json.loads(_environment(s)["AIRFLOW_CONN_AGENT_S3"])["login"]).group("name")
             for name, s in services.items()}  # fmt: skip
    assert login["airflow-apiserver"] == login["airflow-dag-processor"] == "READER_ACCESS_KEY"
    assert login["airflow-worker"] == login["airflow-scheduler"] == "PIPELINE_ACCESS_KEY"
    actions = {
        action for statement in reader_policy(Buckets("l", "m", "a"))["Statement"] for action in statement["Action"]
    }
    assert actions == {"s3:GetBucketLocation", "s3:ListBucket", "s3:GetObject"}
    assert 'user "$$READER_ACCESS_KEY" "$$READER_SECRET_KEY" retraining-reader' in _minio_setup_script()


def test_minio_gets_the_policies_of_s3_access_and_one_user_per_agent():
    """The policies MinIO enforces are the files s3-access renders from include/agent_retraining/s3_access.py (the
    ones the access test attaches to the local S3 server), and every agent of the credentials file gets a user
    of its own; minio-setup waits for s3-access, which refuses a bad credentials file."""
    services = _services()
    renderer = services["s3-access"]
    assert renderer["entrypoint"] == ["python", "-m", "agent_retraining.s3_access"]
    assert renderer["command"][:2] == ["render", "/opt/airflow/s3-access"]
    assert renderer["command"][2:] == ["--credentials", "/run/secrets/agent_credentials"]
    assert renderer["secrets"] == ["agent_credentials"]
    assert _compose()["secrets"]["agent_credentials"] == {"file": "./agent-credentials"}
    assert "s3-access:/opt/airflow/s3-access" in renderer["volumes"]
    setup = services["minio-setup"]
    assert setup["depends_on"]["s3-access"] == {"condition": "service_completed_successfully"}
    assert "s3-access:/s3-access:ro" in setup["volumes"]
    script = _minio_setup_script()
    assert "for document in /s3-access/*.json; do" in script
    assert "done < /s3-access/agents.txt" in script
    assert "AGENT_ACCESS_KEY" not in COMPOSE_FILE.read_text()  # no shared agent user any more
    example = (REPO / "agent-credentials.example").read_text()
    assert "support-bot change-me change-me" in example
    assert "agent-credentials\n" in (REPO / ".gitignore").read_text()


def test_the_stack_runs_fab_with_an_admin_from_env():
    env = _environment(_services()["airflow-apiserver"])
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    assert not [name for name in env if name.startswith("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER")]
    init = "\n".join(_services()["airflow-init"]["command"])
    assert "airflow fab-db migrate" in init
    assert 'airflow users reset-password --username admin --password "$${_AIRFLOW_ADMIN_PASSWORD}"' in init
    requirements = (REPO / "requirements.txt").read_text()
    assert re.search(r"^apache-airflow-providers-fab==[0-9.]+$", requirements, re.MULTILINE)


def test_the_logs_bucket_is_versioned_so_a_bad_writer_cannot_destroy_history():
    script = _minio_setup_script()
    assert 'mc version enable "local/$$L"' in script
    assert 'mc version enable "local/$$M"' in script


# --- 8. a first deploy from the README: S3 endpoint, e-mail, specs folder, lifecycle ------------------------------


def _conn(service: dict, key: str, env: dict[str, str]) -> dict:
    """A service's connection as Airflow reads it once compose has filled the variables in."""
    return json.loads(_interpolate(_environment(service)[key], env))


def test_the_s3_endpoint_is_a_variable_defaulting_to_the_bundled_minio():
    """Airflow's `agent_s3` (every service, both users) and minio-setup's alias reach S3_ENDPOINT_URL; no string of
    the file names http://minio:9000 other than as that variable's default."""
    services = _services()
    own = {"S3_ENDPOINT_URL": "https://s3.example.com", "S3_REGION": "eu-west-1"}
    for name, service in _airflow_services().items():
        for env, endpoint, region in (
            ({}, "http://minio:9000", "us-east-1"),
            (own, own["S3_ENDPOINT_URL"], "eu-west-1"),
        ):
            extra = _conn(service, "AIRFLOW_CONN_AGENT_S3", {**_env_example(), **env})["extra"]
            assert (extra["endpoint_url"], extra["region_name"]) == (endpoint, region), name
    setup = services["minio-setup"]
    assert _interpolate(_environment(setup)["S3_ENDPOINT_URL"], own) == own["S3_ENDPOINT_URL"]
    assert 'mc alias set local "$$S3_ENDPOINT_URL"' in _minio_setup_script()
    leftover = [
        s for s in _strings(_compose()) if "minio:9000" in s.replace("${S3_ENDPOINT_URL:-http://minio:9000}", "")
    ]
    assert not leftover
    assert _env_example()["S3_ENDPOINT_URL"] == "http://minio:9000"


def test_notify_gets_the_smtp_connection_it_sends_through_and_the_base_url_its_links_use():
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    source = (REPO / "dags" / "retrain_agents.py").read_text()
    assert 'conf.get("api", "base_url"' in source  # the link of the mail
    sender = (REPO / "include" / "agent_retraining" / "views" / "notifiers.py").read_text()
    assert "SmtpNotifier(" in sender
    assert "smtp_conn_id" not in sender  # the default connection, with [email] email_conn_id unset
    assert SmtpHook.default_conn_name == "smtp_default"
    example = _env_example()
    for name, service in _airflow_services().items():
        env = _environment(service)
        assert not [key for key in env if key.startswith("AIRFLOW__EMAIL__")], name
        assert _interpolate(env["AIRFLOW__API__BASE_URL"], {}) == "http://localhost:8080"
        assert _interpolate(env["AIRFLOW__API__BASE_URL"], {"AIRFLOW_BASE_URL": "https://af.example.com"}) == (
            "https://af.example.com"
        )
        conn = _conn(service, "AIRFLOW_CONN_SMTP_DEFAULT", example)
        assert conn["conn_type"] == "smtp"
        assert (conn["host"], int(conn["port"])) == (example["SMTP_HOST"], int(example["SMTP_PORT"]))
        assert (conn["login"], conn["password"]) == ("", "")  # no login unless .env gives one
        # The hook reads the flags with bool(): they must be JSON booleans, never the text "false"
        assert conn["extra"] == {"from_email": example["SMTP_FROM"], "disable_ssl": True, "disable_tls": False}
        smtps = _conn(
            service, "AIRFLOW_CONN_SMTP_DEFAULT", {**example, "SMTP_DISABLE_SSL": "false", "SMTP_PORT": "465"}
        )
        assert (smtps["extra"]["disable_ssl"], smtps["port"]) == (False, "465")
    without_login = {k: v for k, v in example.items() if k != "SMTP_USER"}
    with pytest.raises(KeyError, match="SMTP_USER"):  # compose refuses to start, naming the variable
        _conn(_airflow_services()["airflow-worker"], "AIRFLOW_CONN_SMTP_DEFAULT", without_login)


def test_specs_come_from_the_folder_agent_specs_dir_names(monkeypatch):
    """Every container that reads specs (the DAG file in the dag-processor and workers, the Agent models page,
    s3-access checking the credentials) reads the folder that AGENT_SPECS_DIR of .env mounts, read-only."""
    from agent_retraining.spec import agents_dir

    services = _services()
    readers = {name: services[name] for name in (*_airflow_services(), "s3-access")}
    for name, service in readers.items():
        inside = _environment(service)["AGENT_SPECS_DIR"]
        # source:target[:mode], the source a `${VAR:-default}` that holds a colon of its own
        mounts = [
            re.fullmatch(r"(?P<source>.+):(?P<target>/[^:]+)(?::(?P<mode>\w+))?", str(v)) for v in service["volumes"]
        ]
        sources = [m["source"] for m in mounts if m and m["target"] == inside and m["mode"] == "ro"]
        assert len(sources) == 1, f"{name}: nothing mounted read-only at {inside}"
        source = sources[0]
        assert _interpolate(source, {}) == "./include/agents", name
        assert _interpolate(source, {"AGENT_SPECS_DIR": "/srv/specs"}) == "/srv/specs", name
    assert (REPO / _env_example()["AGENT_SPECS_DIR"] / "support-bot.yaml").is_file()
    monkeypatch.setenv("AGENT_SPECS_DIR", "/opt/airflow/agents")
    assert str(agents_dir()) == "/opt/airflow/agents"


MC_STUB = """#!/bin/sh
# mc as minio-setup calls it: every call logged; `admin user info` prints the log (so the attached policy shows);
# `ilm rule import` keeps its stdin
echo "$*" >> "$MC_LOG"
case "$*" in
  "admin user info"*) cat "$MC_LOG" ;;
  "ilm rule import"*) cat > "$MC_IMPORTED" ;;
esac
"""


def _run_minio_setup(tmp_path: Path, agents: str, **env: str) -> subprocess.CompletedProcess:
    """minio-setup's script as its container runs it (compose's `$$` is `$`), against a stub `mc`."""
    folder = tmp_path / "s3-access"
    folder.mkdir()
    (folder / "agents.txt").write_text(agents)
    (folder / "retraining-pipeline.json").write_text("{}")
    stub = tmp_path / "bin" / "mc"
    stub.parent.mkdir()
    stub.write_text(MC_STUB)
    stub.chmod(0o755)
    script = _interpolate(_minio_setup_script(), {}).replace("/s3-access/", f"{folder}/")
    settings = {key: "x" for key in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "PIPELINE_ACCESS_KEY",
                                     "PIPELINE_SECRET_KEY", "READER_ACCESS_KEY", "READER_SECRET_KEY")}  # fmt: skip
    settings |= {"LOGS_BUCKET": "logs", "MODELS_BUCKET": "models", "ARTIFACTS_BUCKET": "artifacts",
                 "S3_ENDPOINT_URL": "https://s3.example.com", "VALIDATED_DAYS_EXPIRE_DAYS": "90",
                 "QUARANTINE_EXPIRE_DAYS": "30"}  # fmt: skip
    settings |= {"PATH": f"{stub.parent}:/usr/bin:/bin", "MC_LOG": str(tmp_path / "mc.log"),
                 "MC_IMPORTED": str(tmp_path / "lifecycle.json"), **env}  # fmt: skip
    return subprocess.run(["/bin/sh", "-c", script], env=settings, capture_output=True, text=True, timeout=60)


def test_minio_setup_expires_each_agents_validated_days_and_quarantine_and_nothing_else(tmp_path):
    """The lifecycle minio-setup imports: one rule per agent and prefix, at the prefixes contract.py writes to,
    replacing the bucket's configuration (a rerun adds no duplicate)."""
    from agent_retraining.contract import quarantine_prefix, validated_days_prefix

    done = _run_minio_setup(tmp_path, "support-bot ak1 sk1 agent-support-bot\nrouter ak2 sk2 agent-router\n")
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "mc.log").read_text().splitlines()
    assert calls[0].startswith("alias set local https://s3.example.com ")
    assert "ilm rule import local/artifacts" in calls
    assert not [call for call in calls if call.startswith("ilm rule add")]
    rules = json.loads((tmp_path / "lifecycle.json").read_text())["Rules"]
    expiry = {rule["Filter"]["Prefix"]: rule["Expiration"]["Days"] for rule in rules}
    assert expiry == {f"{agent}/{kind}/": days for agent in ("support-bot", "router")
                      for kind, days in (("days", 90), ("quarantine", 30))}  # fmt: skip
    assert len({rule["ID"] for rule in rules}) == 4
    assert {rule["Status"] for rule in rules} == {"Enabled"}
    day = date(2026, 3, 10)
    assert validated_days_prefix("router", day).startswith("router/days/")
    assert quarantine_prefix("router", day).startswith("router/quarantine/")
    assert "in artifacts validated days expire after 90 days, quarantine after 30" in done.stdout


@pytest.mark.parametrize("days", ["0", "", "30d", "-1", "007"])
def test_minio_setup_refuses_an_expiry_that_is_not_whole_days(tmp_path, days):
    done = _run_minio_setup(tmp_path, "support-bot ak1 sk1 agent-support-bot\n", QUARANTINE_EXPIRE_DAYS=days)
    assert done.returncode == 1
    assert f"must be whole days, 1 or more; got '{days}'" in done.stderr
    assert not (tmp_path / "mc.log").exists()  # refused before anything changed


def test_minio_setup_without_agents_imports_no_empty_lifecycle(tmp_path):
    """`mc ilm rule import` refuses a configuration without rules: with no agent yet there is nothing to import."""
    done = _run_minio_setup(tmp_path, "")
    assert done.returncode == 0, done.stderr
    assert "ilm rule import" not in (tmp_path / "mc.log").read_text()


def test_docker_compose_accepts_the_file_with_the_example_settings(tmp_path):
    """`docker compose config` where a Docker engine's compose plugin is installed (not on every machine)."""
    if not shutil.which("docker") or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode:
        pytest.skip("no `docker compose` on this machine")
    env_file = tmp_path / ".env"
    env_file.write_text(ENV_EXAMPLE.read_text())
    (tmp_path / "agent-credentials").write_text("")
    done = subprocess.run(["docker", "compose", "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", "-q"],
                          cwd=REPO, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
