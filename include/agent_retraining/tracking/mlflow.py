"""Each night's candidates and the live model, mirrored into MLflow for teams that browse their models there.

The manifest in S3 is what the agent serves and what every run judges against; MLflow only shows it. So nothing
here may block or change a decision: every call is bounded (short timeouts, few retries, one time budget per
call), and every failure, from a refused connection to an answer that is not what the API documents, comes back
as a `TrackingOutcome` for the task to log and the UI to show, never as an exception.

MLflow's REST API (/api/2.0/mlflow/...) is spoken directly with the standard library rather than through the
`mlflow` package, whose dependencies would have to resolve together with Airflow's. It is off unless
MLFLOW_TRACKING_URI names an http(s) server.

Every value comes from a record that may have been written by an older version or by hand: keys are reduced to
the characters MLflow accepts, strings are cut to MLflow's limits, metrics that are not finite numbers are left
out, and a missing field is simply not recorded.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import math
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime

log = logging.getLogger(__name__)

API = "/api/2.0/mlflow/"
# MLflow's limits (mlflow/utils/validation.py): what is longer is refused, or silently cut by the server.
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_PARAMS_OR_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
# Ours: a hostile record must not turn one run into thousands of requests or an unreadable page.
MAX_METRICS = 500
MAX_DEPTH = 4
MAX_ANSWER_BYTES = 16 * 1024 * 1024
TRUNCATED = "...[truncated]"
# The tag both runs and model versions are found again by: a hex digest, so no record value is ever quoted into a
# search filter.
LOOKUP_TAG = "retraining_key"
CHAMPION, CHALLENGER = "champion", "challenger"
# Curves and per-row lists are for the report; MLflow gets the scalar metrics.
NOT_METRICS = frozenset({"calibration_curve"})


@dataclass(frozen=True)
class MlflowSettings:
    """Where MLflow is and how long it may hold a task up; the credentials are MLflow's own environment variables."""

    tracking_uri: str
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 5.0  # per request
    attempts: int = 3  # per request, for a refused connection, a timeout, a 429 or a 5xx
    budget_s: float = 60.0  # per call of record_night or move_aliases, retries and waits included
    experiment_prefix: str = "agent-retraining/"
    model_prefix: str = "agent-retraining-"  # registered model names may not contain "/"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> MlflowSettings | None:
        """The settings MLflow's own clients read, or None (MLflow off) when MLFLOW_TRACKING_URI is unset."""
        uri = environ.get("MLFLOW_TRACKING_URI", "").strip()
        if not uri:
            return None
        return cls(
            uri,
            token=environ.get("MLFLOW_TRACKING_TOKEN") or None,
            username=environ.get("MLFLOW_TRACKING_USERNAME") or None,
            password=environ.get("MLFLOW_TRACKING_PASSWORD") or None,
        )


@dataclass(frozen=True)
class TrackingOutcome:
    """What a mirror into MLflow did: JSON-ready for a task's log, its XCom and the UI page.

    `ok` with `skipped` set means MLflow is off (or there was nothing to mirror); `ok` False carries the `error`,
    and `details` what was recorded before it (run ids, model versions, links).
    """

    what: str
    ok: bool
    error: str | None = None
    skipped: str | None = None
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class MlflowFailure(Exception):
    """MLflow could not be reached, refused a request, or answered something the API does not document."""


class MlflowApiError(MlflowFailure):
    """A documented refusal: MLflow's error code (RESOURCE_ALREADY_EXISTS, ...) tells the caller what to do."""

    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class _Rest:
    """MLflow's REST API with bounded waiting: each request `attempts` times at most, all of them within one
    budget, because a task waiting on an optional mirror holds a worker slot (and the manifest's deploy lock)."""

    def __init__(self, settings: MlflowSettings) -> None:
        scheme = urllib.parse.urlsplit(settings.tracking_uri).scheme
        if scheme not in ("http", "https"):
            raise MlflowFailure(f"MLFLOW_TRACKING_URI must be an http(s) MLflow server, not {scheme or 'a path'}")
        self.settings = settings
        self.base = settings.tracking_uri.rstrip("/") + API
        self.deadline = time.monotonic() + settings.budget_s
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.token:
            self.headers["Authorization"] = f"Bearer {settings.token}"
        elif settings.username and settings.password:
            pair = f"{settings.username}:{settings.password}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()

    def call(self, method: str, endpoint: str, body: dict | None = None, query: dict | None = None) -> dict:
        url = self.base + endpoint + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body, allow_nan=False).encode()
        what = f"{method} {API}{endpoint}"
        failure = MlflowFailure(f"{what}: no attempt made")
        for attempt in range(1, self.settings.attempts + 1):
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise MlflowFailure(f"{what}: gave up, the {self.settings.budget_s:g} s budget is spent ({failure})")
            request = urllib.request.Request(url, data=data, method=method, headers=self.headers)
            try:
                with urllib.request.urlopen(request, timeout=min(self.settings.timeout_s, left)) as response:
                    return _json_object(response.read(MAX_ANSWER_BYTES), what)
            except urllib.error.HTTPError as exc:
                failure = _api_error(what, exc)
                if exc.code != 429 and exc.code < 500:  # the same request would be refused again
                    raise failure from None
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, name not resolved
                failure = MlflowFailure(f"{what}: {getattr(exc, 'reason', None) or exc!r}")
            if attempt < self.settings.attempts:
                time.sleep(min(0.5 * 2 ** (attempt - 1), max(self.deadline - time.monotonic(), 0)))
        raise failure


def _json_object(body: bytes, what: str) -> dict:
    try:
        answer = json.loads(body or b"{}")  # proto3 JSON leaves out empty fields: an empty answer is {}
    except ValueError as exc:
        raise MlflowFailure(f"{what}: the answer is not JSON ({body[:200]!r})") from exc
    if not isinstance(answer, dict):
        raise MlflowFailure(f"{what}: the answer is not a JSON object ({body[:200]!r})")
    return answer


def _api_error(what: str, exc: urllib.error.HTTPError) -> MlflowApiError:
    try:
        answer = json.loads(exc.read(64 * 1024))
    except (OSError, http.client.HTTPException, ValueError):
        answer = {}
    answer = answer if isinstance(answer, dict) else {}
    code = str(answer.get("error_code") or f"HTTP_{exc.code}")
    message = _text(answer.get("message") or exc.reason, 500)
    return MlflowApiError(f"{what}: HTTP {exc.code} {code}: {message}", code)


def _answer(answer: dict, what: str, *path: str) -> str:
    """A string field the API documents in its answer (ids, version numbers); anything else is a bad answer."""
    value = answer
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise MlflowFailure(f"{what}: the answer has no {'.'.join(path)} ({_text(answer, 200)})")
    return value


def _text(value, limit: int) -> str:
    """Any value as a string MLflow takes whole: JSON for what is not a string, cut (and marked) at `limit`."""
    if not isinstance(value, str):
        try:
            value = json.dumps(value, sort_keys=True, default=str)
        except (TypeError, ValueError, RecursionError):  # keys of mixed types, cycles, nesting past the recursion limit
            value = repr(value)
    return value if len(value) <= limit else value[: limit - len(TRUNCATED)] + TRUNCATED


def _key(name) -> str:
    """A name as MLflow accepts it for a param, metric or tag: its characters, a name that is no path trick."""
    key = re.sub(r"[^A-Za-z0-9_.\- ]", "_", name if isinstance(name, str) else _text(name, MAX_KEY))
    if key in ("", ".") or key.startswith(".."):
        key = "_" + key
    return key[:MAX_KEY]


def _finite(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer past float's range
        return None
    return number if math.isfinite(number) else None


def _metrics(values, prefix: str = "", depth: int = 0) -> dict[str, float]:
    """Scalar metrics by dotted name (`slices.channel_chat.roc_auc`); an interval [low, high] as two metrics."""
    found: dict[str, float] = {}
    if not isinstance(values, dict) or depth > MAX_DEPTH:
        return found
    for name, value in values.items():
        if name in NOT_METRICS:
            continue
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            found |= _metrics(value, key + ".", depth + 1)
        elif isinstance(value, list) and len(value) == 2:
            found |= {
                f"{key}.{end}": v for end, v in zip(("low", "high"), map(_finite, value), strict=True) if v is not None
            }
        elif (number := _finite(value)) is not None:
            found[key] = number
    return found


def _lookup_key(*parts) -> str:
    return hashlib.sha256("\n".join(_text(p, 10_000) for p in parts).encode()).hexdigest()[:32]


def _entries(values: dict, limit: int) -> list[dict]:
    """MLflow's key/value list: keys made valid (the first of two that become the same wins), values cut."""
    entries: dict[str, str] = {}
    for name, value in values.items():
        if value is not None:
            entries.setdefault(_key(name), _text(value, limit))
    return [{"key": k, "value": v} for k, v in entries.items()]


def _batches(params: list[dict], tags: list[dict], metrics: list[dict]) -> Iterator[dict]:
    """log-batch requests within MLflow's limits per request."""
    while params or tags or metrics:
        some_params, params = params[:MAX_PARAMS_OR_TAGS_PER_BATCH], params[MAX_PARAMS_OR_TAGS_PER_BATCH:]
        some_tags, tags = tags[:MAX_PARAMS_OR_TAGS_PER_BATCH], tags[MAX_PARAMS_OR_TAGS_PER_BATCH:]
        room = MAX_ENTITIES_PER_BATCH - len(some_params) - len(some_tags)
        some_metrics, metrics = metrics[:room], metrics[room:]
        yield {"params": some_params, "tags": some_tags, "metrics": some_metrics}


def _page(settings: MlflowSettings, fragment: str) -> str:
    """A link to MLflow's UI for the outcome (shown on a page): without any credentials written into the URI."""
    parts = urllib.parse.urlsplit(settings.tracking_uri)
    base = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl().rstrip("/")
    return f"{base}/#/{fragment}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _failed(what: str, exc: Exception, details: dict) -> TrackingOutcome:
    if isinstance(exc, MlflowFailure):
        log.warning("MLflow %s failed (the pipeline's decision is unaffected): %s", what, exc)
    else:  # a record shaped in a way nobody foresaw, or a bug here: still never the task's failure
        log.exception("MLflow %s failed (the pipeline's decision is unaffected)", what)
    return TrackingOutcome(what, ok=False, error=_text(f"{type(exc).__name__}: {exc}", 2000), details=details)


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _flag(value) -> str | None:
    return None if value is None else str(bool(value)).lower()


# --- the night's runs ---------------------------------------------------------------------------------------------


def _experiment_id(rest: _Rest, name: str) -> str:
    """The agent's experiment, created on first use (and found again when another task created it meanwhile)."""
    what = "experiments/get-by-name"
    for _ in range(2):
        try:
            answer = rest.call("GET", what, query={"experiment_name": name})
        except MlflowApiError as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        else:
            if _dict(answer.get("experiment")).get("lifecycle_stage", "active") != "active":
                raise MlflowFailure(f"experiment {name!r} is deleted in MLflow: restore it, or delete it for good")
            return _answer(answer, what, "experiment", "experiment_id")
        try:
            return _answer(
                rest.call("POST", "experiments/create", {"name": name}), "experiments/create", "experiment_id"
            )
        except MlflowApiError as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    raise MlflowFailure(f"experiment {name!r} was neither found nor created")


def _upsert_run(
    rest: _Rest,
    experiment_id: str,
    lookup: str,
    name: str,
    params: dict,
    tags: dict,
    metrics: dict[str, float],
    timestamp_ms: int,
) -> str:
    """The run recorded under `lookup` (a retried task's earlier try), completed; or a new one.

    Params MLflow already holds are not sent again: it refuses to change one, and a retry must not fail on that.
    Metrics carry the night's timestamp, so a retry's identical points are the same points to MLflow.
    """
    found = rest.call(
        "POST",
        "runs/search",
        {"experiment_ids": [experiment_id], "max_results": 1, "filter": f"tags.{LOOKUP_TAG} = '{lookup}'"},
    )
    runs = _list(found.get("runs"))
    if runs:
        run = _dict(runs[0])
        run_id = _answer(run, "runs/search", "info", "run_id")
        held = {
            p.get("key"): p.get("value") for p in _list(_dict(run.get("data")).get("params")) if isinstance(p, dict)
        }
    else:  # tagged with its lookup key first, so a try that fails half-way leaves a run the next try completes
        created = rest.call(
            "POST",
            "runs/create",
            {
                "experiment_id": experiment_id,
                "run_name": name[:MAX_KEY],
                "start_time": _now_ms(),
                "tags": [{"key": LOOKUP_TAG, "value": lookup}],
            },
        )
        run_id, held = _answer(created, "runs/create", "run", "info", "run_id"), {}
    param_list = []
    for param in _entries(params, MAX_PARAM_VALUE):
        if param["key"] not in held:
            param_list.append(param)
        elif held[param["key"]] != param["value"]:
            log.warning(
                "MLflow run %s keeps param %s=%r (params cannot change); this try has %r",
                run_id,
                param["key"],
                held[param["key"]],
                param["value"],
            )
    metric_list = [
        {"key": _key(k), "value": v, "timestamp": timestamp_ms, "step": 0}
        for k, v in list(metrics.items())[:MAX_METRICS]
    ]
    for batch in _batches(param_list, _entries(tags, MAX_TAG_VALUE), metric_list):
        rest.call("POST", "runs/log-batch", {"run_id": run_id, **batch})
    rest.call(
        "POST",
        "runs/update",
        {"run_id": run_id, "status": "FINISHED", "end_time": _now_ms(), "run_name": name[:MAX_KEY]},
    )
    return run_id


def _rule_tags(rules: list) -> dict:
    tags = {}
    for rule in rules:
        rule = _dict(rule)
        if isinstance(rule.get("rule"), str):
            tags[f"rule.{rule['rule']}"] = "passed" if rule.get("passed") else "failed"
            tags[f"rule.{rule['rule']}.detail"] = rule.get("detail")
    return tags


def _night_runs(
    day: str, decision: dict, candidates: list, artifacts_bucket: str, deployment: dict | None
) -> Iterator[tuple]:
    """(role, name, run name, params, tags, metrics) of every model the night scored: each candidate, and the
    champion."""
    metrics = _dict(decision.get("metrics"))
    winner = _dict(decision.get("winner")).get("candidate")
    verdicts = {c.get("candidate"): c for c in map(_dict, _list(decision.get("candidates")))}
    night = {
        "decision.deploy": _flag(decision.get("deploy")),
        "decision.reason": decision.get("reason"),
        "decision.winner": winner,
        "decision.run_type": decision.get("run_type"),
        "primary_metric": decision.get("primary_metric"),
        "estimator": _dict(decision.get("estimator")).get("name"),
        "window.first": _dict(decision.get("window")).get("first"),
        "window.last": _dict(decision.get("window")).get("last"),
        "holdout_rows": decision.get("holdout_rows"),
    }
    for candidate in map(_dict, candidates):
        name = candidate.get("candidate")
        if not isinstance(name, str) or not name:
            continue
        won = name == winner
        verdict = _dict(verdicts.get(name))
        failed = [r for r in map(_dict, _list(verdict.get("failed"))) if isinstance(r.get("rule"), str)]
        onnx = _dict(candidate.get("onnx"))
        tags = {
            **night,
            "role": "candidate",
            "candidate": name,
            "framework": candidate.get("framework"),
            "decision.is_winner": _flag(won),
            "decision.passed": _flag(verdict.get("passed")),
            "decision.failed_rules": ", ".join(r["rule"] for r in failed),
            # The winner's every rule is in the decision; of the others, the rules they failed.
            **_rule_tags(_list(decision.get("rules")) if won else failed),
            "artifact_uri": f"s3://{artifacts_bucket}/{candidate['artifact_key']}"
            if isinstance(candidate.get("artifact_key"), str)
            else None,
            "artifact_sha256": candidate.get("sha256"),
            "onnx_uri": f"s3://{artifacts_bucket}/{onnx['key']}" if isinstance(onnx.get("key"), str) else None,
            "onnx_sha256": onnx.get("sha256"),
            "encoding_id": candidate.get("encoding_id"),
            "trained_on.first": _dict(candidate.get("trained_on")).get("first"),
            "trained_on.last": _dict(candidate.get("trained_on")).get("last"),
            "train_rows": candidate.get("train_rows"),
        }
        if deployment is not None:
            deployed = won and bool(deployment.get("deployed"))
            tags |= {
                "deployed": _flag(deployed),
                "deployment.slot": deployment.get("slot") if deployed else None,
                "deployment.version": deployment.get("version") if deployed else None,
                "deployment.refused": deployment.get("refused") if won else None,
            }
        params = {
            "candidate": name,
            "framework": candidate.get("framework"),
            **{f"hp.{k}": v for k, v in _dict(candidate.get("params")).items()},
        }
        scores = _metrics(metrics.get(name))
        if won:
            scores |= _metrics(
                {
                    "vs_logging": decision.get("policy_value_vs_logging"),
                    "vs_champion": decision.get("policy_value_vs_champion"),
                }
            )
        yield "candidate", name, f"{day} {name}", params, tags, scores
    champion = _dict(decision.get("champion"))
    if isinstance(metrics.get("champion"), dict):
        tags = {
            **night,
            "role": "champion",
            "manifest_version": champion.get("version"),
            "champion.note": champion.get("note"),
            "champion.fails_floors": _flag(champion.get("fails_floors")),
            **_rule_tags(_list(champion.get("floors"))),
        }
        run_name = f"{day} champion {champion.get('version')}"
        yield "champion", "champion", run_name, {}, tags, _metrics(metrics["champion"])


def _day_ms(day: str) -> int:
    return int(datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC).timestamp() * 1000)


def record_night(
    settings: MlflowSettings | None,
    agent_id: str,
    day: str,
    airflow_run_id: str,
    decision: dict,
    candidates: list[dict],
    artifacts_bucket: str,
    deployment: dict | None = None,
) -> TrackingOutcome:
    """Record a night's models as runs of the agent's experiment: params, holdout metrics, the decision as tags.

    One run per candidate (and one for the champion, scored on the same holdout), found again by the Airflow run
    id, so a retried or cleared task completes its runs instead of adding more. `decision` is the run's
    decision.json, `candidates` the `train` tasks' metadata (what `evaluate` got), `deployment` the run's
    deployment.json when `deploy` ran. Never raises.
    """
    what = "record_night"
    if settings is None:
        return TrackingOutcome(what, ok=True, skipped="MLflow is off (no MLFLOW_TRACKING_URI)")
    details: dict = {"runs": {}}
    try:
        rest = _Rest(settings)
        experiment = settings.experiment_prefix + agent_id
        experiment_id = _experiment_id(rest, experiment)
        details |= {
            "experiment": experiment,
            "experiment_id": experiment_id,
            "url": _page(settings, f"experiments/{experiment_id}"),
        }
        timestamp = _day_ms(day)
        night = _night_runs(day, _dict(decision), _list(candidates), artifacts_bucket, deployment)
        for role, name, run_name, params, tags, metrics in night:
            tags |= {"agent_id": agent_id, "day": day, "airflow_run_id": airflow_run_id}
            lookup = _lookup_key(agent_id, airflow_run_id, role, name)
            details["runs"][name] = _upsert_run(rest, experiment_id, lookup, run_name, params, tags, metrics, timestamp)
    except Exception as exc:  # MLflow mirrors the decision: it may never fail the task that made it
        return _failed(what, exc, details)
    log.info("MLflow: recorded %d runs of %s in experiment %s", len(details["runs"]), day, experiment)
    return TrackingOutcome(what, ok=True, details=details)


# --- the registry's aliases ---------------------------------------------------------------------------------------


def _registered_model(rest: _Rest, name: str, agent_id: str) -> None:
    body = {
        "name": name,
        "description": f"The models the manifest of {agent_id} named; the champion alias is the "
        "live one, challenger a running canary. The manifest in S3 decides.",
    }
    try:
        rest.call("POST", "registered-models/create", body)
    except MlflowApiError as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def _model_version(rest: _Rest, name: str, entry: dict, models_bucket: str) -> dict:
    """The registry's version for a manifest entry: the one registered for that manifest version before, if any.

    Its source is the native artifact in the models bucket (the manifest's `artifact_uri`), pinned by its sha256.
    """
    version = entry.get("version")
    if not isinstance(version, str) or not version:
        raise MlflowFailure(f"a manifest entry without a version cannot be registered ({_text(entry, 200)})")
    lookup = _lookup_key(name, version)
    found = rest.call(
        "GET",
        "model-versions/search",
        query={"filter": f"name = '{name}' AND tags.{LOOKUP_TAG} = '{lookup}'", "max_results": 1},
    )
    versions = _list(found.get("model_versions"))
    if versions:
        return {
            "manifest_version": version,
            "mlflow_version": _answer(_dict(versions[0]), "model-versions/search", "version"),
        }
    source = entry.get("artifact_uri")
    if not (isinstance(source, str) and source.startswith("s3://")):
        if not isinstance(entry.get("artifact_key"), str):
            raise MlflowFailure(f"manifest entry {version} names no artifact to register")
        source = f"s3://{models_bucket}/{entry['artifact_key']}"
    onnx = _dict(entry.get("onnx"))
    tags = {
        LOOKUP_TAG: lookup,
        "manifest_version": version,
        "sha256": entry.get("sha256"),
        "framework": entry.get("framework"),
        "encoding_id": entry.get("encoding_id"),
        "onnx_key": onnx.get("key"),
        "onnx_sha256": onnx.get("sha256"),
        "trained_on.first": _dict(entry.get("trained_on")).get("first"),
        "trained_on.last": _dict(entry.get("trained_on")).get("last"),
        "airflow_run_id": entry.get("run_id"),
        "deployed_by": entry.get("deployed_by"),
    }
    created = rest.call(
        "POST",
        "model-versions/create",
        {
            "name": name,
            "source": source[:MAX_TAG_VALUE],
            "description": _text(entry.get("reason") or "", 5000),
            "tags": _entries(tags, MAX_TAG_VALUE),
        },
    )
    return {
        "manifest_version": version,
        "mlflow_version": _answer(created, "model-versions/create", "model_version", "version"),
    }


def _delete_alias(rest: _Rest, name: str, alias: str) -> None:
    try:
        rest.call("DELETE", "registered-models/alias", {"name": name, "alias": alias})
    except MlflowApiError as exc:  # MLflow's own server answers a missing alias with success; others may not
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise


def move_aliases(
    settings: MlflowSettings | None, agent_id: str, manifest: dict | None, models_bucket: str
) -> TrackingOutcome:
    """After the manifest moved (deploy, canary start, promotion, abort, rollback): `champion` to its live model,
    `challenger` to its canary, or away when none runs.

    `manifest` is the manifest as it is after the swap (read back, so a lost race shows what won). Never raises.
    """
    what = "move_aliases"
    if settings is None:
        return TrackingOutcome(what, ok=True, skipped="MLflow is off (no MLFLOW_TRACKING_URI)")
    if not isinstance(manifest, dict):
        return TrackingOutcome(what, ok=True, skipped=f"{agent_id} has no manifest: no model is live")
    name = _key(settings.model_prefix + agent_id)
    details: dict = {"registered_model": name}
    try:
        rest = _Rest(settings)
        _registered_model(rest, name, agent_id)
        details[CHAMPION] = _model_version(rest, name, manifest, models_bucket)
        canary = manifest.get("canary")
        details[CHALLENGER] = _model_version(rest, name, canary, models_bucket) if isinstance(canary, dict) else None
        rest.call(
            "POST",
            "registered-models/alias",
            {"name": name, "alias": CHAMPION, "version": details[CHAMPION]["mlflow_version"]},
        )
        if details[CHALLENGER]:
            rest.call(
                "POST",
                "registered-models/alias",
                {"name": name, "alias": CHALLENGER, "version": details[CHALLENGER]["mlflow_version"]},
            )
        else:
            _delete_alias(rest, name, CHALLENGER)
        details["url"] = _page(settings, f"models/{urllib.parse.quote(name)}")
    except Exception as exc:  # MLflow mirrors the manifest: it may never fail the task that moved it
        return _failed(what, exc, details)
    log.info("MLflow: %s champion=%s challenger=%s", name, details[CHAMPION], details[CHALLENGER])
    return TrackingOutcome(what, ok=True, details=details)
