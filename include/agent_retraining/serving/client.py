"""The agent's side of the manifest: load the live model (and a canary) safely, route, and keep serving.

This is what runs inside the agent in production, so it needs the manifest alone (each model entry carries its
feature encoding) and serves each model from its ONNX export with onnxruntime: no Airflow, scikit-learn, LightGBM
or PyTorch in the agent. It never lets storage trouble reach the agent: it polls the manifest, checks it against
the serving contract's JSON Schema, downloads and checks each ONNX file's sha256, and only then swaps it in. An S3
outage, a missing or tampered file, or a manifest this client does not fully understand (a newer
`schema_version`, say) leaves the current model serving; the reason is in `last_error`. A canary that fails its
checks is never served: the live model keeps every request.

With a canary in the manifest, a stable share of routing keys (a session id, say) is served by it: the key's hash,
salted with the canary's version, decides, so a session keeps its arm for the canary's whole run. Every decision
reports the version that acted and that policy's propensity, for the agent to log. docs/serving-contract.md is the
same for a client in another language (clients/node/ is one).

    client = AgentModelClient("support-bot", s3_client_from_env(), "agent-models")
    client.poll()                                              # call every few minutes
    action, propensity, version = client.choose(context, session_id, rng)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from agent_retraining.contract import manifest_key
from agent_retraining.hashing import hash64
from agent_retraining.models.artifacts import ArtifactError, fetch_verified
from agent_retraining.models.encoding import action_scores, context_block, context_table
from agent_retraining.serving.manifest_schema import manifest_problem
from agent_retraining.serving.portable_model import PortableModel


def routes_to_canary(routing_key: str, canary_version: str, share: float) -> bool:
    """Whether the canary serves this routing key: stable for the canary's whole run, a fresh draw per canary."""
    return hash64(f"{canary_version}/{routing_key}") < share * 2**64


def greedy_policy(scores: np.ndarray, exploration: float) -> np.ndarray:
    """Probabilities of a policy greedy on `scores` (rows x actions) that explores uniformly with probability
    `exploration`: every action keeps a propensity of at least exploration / actions, so its logs stay usable
    for off-policy evaluation."""
    probabilities = np.full(scores.shape, exploration / scores.shape[1])
    probabilities[np.arange(len(scores)), scores.argmax(axis=1)] += 1.0 - exploration
    return probabilities


# What a model file that fails so raises: a wrong checksum, a file onnxruntime cannot run, an entry it cannot use.
# Models are written once under new keys, so such a file stays bad until the manifest changes; anything else
# (S3 trouble) is tried again at the next poll.
STAYS_BAD = (ArtifactError, ValueError)


class NoModel(Exception):
    """No model has been loaded yet (no manifest, or every artifact so far was refused)."""


@dataclass(frozen=True)
class ServingModel:
    version: str
    sha256: str  # of the ONNX file
    encoding: dict
    model: PortableModel

    def scores(self, contexts: list[dict]) -> np.ndarray:
        """P(reward = 1) of every action for each context: shape (contexts, actions)."""
        block = context_block(self.encoding, context_table(self.encoding, contexts))
        return action_scores(self.encoding, block, [self.model])[0]


class AgentModelClient:
    def __init__(self, agent_id: str, s3, models_bucket: str, exploration: float = 0.1):
        self.agent_id = agent_id
        self.s3 = s3
        self.models_bucket = models_bucket
        self.exploration = exploration
        self.live: ServingModel | None = None
        self.canary: ServingModel | None = None
        self.canary_share = 0.0
        self.manifest_etag: str | None = None  # the manifest last acted on: served, or refused until it changes
        self.last_error: str | None = None

    @property
    def version(self) -> str | None:
        return self.live.version if self.live else None

    def _load(self, entry: dict, *loaded: ServingModel | None) -> ServingModel:
        """The entry's model: one already loaded (a promoted canary, say), or downloaded, verified and loaded."""
        portable = entry["onnx"]
        for current in loaded:
            if current and (current.version, current.sha256) == (entry["version"], portable["sha256"]):
                return current
        body = fetch_verified(self.s3, self.models_bucket, portable["key"], portable["sha256"])
        return ServingModel(entry["version"], portable["sha256"], entry["encoding"], PortableModel(body))

    def poll(self) -> bool:
        """Load the manifest's models if the manifest changed; True when what serves changed."""
        etag = None
        try:
            response = self.s3.get_object(Bucket=self.models_bucket, Key=manifest_key(self.agent_id))
            etag = response["ETag"]
            if etag == self.manifest_etag:
                return False
            manifest = json.loads(response["Body"].read())
            problem = manifest_problem(manifest)
            if problem:  # stays wrong until the manifest changes: not fetched again before that
                self.manifest_etag, self.last_error = etag, f"manifest not used, current model kept: {problem}"
                return False
            live = self._load(manifest, self.live, self.canary)
        except Exception as exc:  # anything at all: the agent keeps serving what it has
            if isinstance(exc, STAYS_BAD):
                self.manifest_etag = etag
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        canary, error, retry, entry = None, None, False, manifest.get("canary")
        if entry:
            try:
                canary = self._load(entry, self.canary)
            except Exception as exc:  # never served; the live model keeps every request
                error = f"canary {entry.get('version')} not served: {type(exc).__name__}: {exc}"
                retry = not isinstance(exc, STAYS_BAD)
        before = (self.version, self.canary and self.canary.version)
        self.live, self.canary, self.canary_share = live, canary, float(entry["share"]) if canary else 0.0
        self.manifest_etag = None if retry else etag
        self.last_error = error
        return (self.version, canary and canary.version) != before

    def _require_live(self) -> ServingModel:
        if self.live is None:
            raise NoModel(f"no model loaded for {self.agent_id}: {self.last_error or 'not polled yet'}")
        return self.live

    def scores(self, contexts: list[dict]) -> np.ndarray:
        """The live model's predicted P(reward = 1) of every action for each context: shape (contexts, actions)."""
        return self._require_live().scores(contexts)

    def in_canary(self, routing_keys: list[str]) -> np.ndarray:
        """Which of these routing keys the canary serves (none while there is no canary)."""
        if self.canary is None:
            return np.zeros(len(routing_keys), dtype=bool)
        return np.array([routes_to_canary(k, self.canary.version, self.canary_share) for k in routing_keys], bool)

    @property
    def actions(self) -> list[str]:
        """The actions `serve` gives propensities for: the live model's, then any the canary adds (a handler the
        spec gained, which the live model knows nothing of)."""
        live = self._require_live().encoding["actions"]
        return live + [a for a in (self.canary.encoding["actions"] if self.canary else []) if a not in live]

    def serve(self, contexts: list[dict], routing_keys: list[str]) -> tuple[np.ndarray, list[str]]:
        """The policy that acts on each request, greedy on its arm's model and exploring uniformly with probability
        `exploration` over that model's actions (propensities, contexts x `actions`: 0 for an action the arm does
        not know), and the model version that acted, to log."""
        live, canary, actions = self._require_live(), self.in_canary(routing_keys), self.actions
        propensities = np.zeros((len(contexts), len(actions)))
        for arm, rows in ((live, ~canary), (self.canary, canary)):
            if rows.any():
                scores = arm.scores([context for context, mine in zip(contexts, rows, strict=True) if mine])
                own = [actions.index(action) for action in arm.encoding["actions"]]
                propensities[np.ix_(np.flatnonzero(rows), own)] = greedy_policy(scores, self.exploration)
        versions = np.where(canary, self.canary.version if self.canary else "", live.version)
        return propensities, versions.tolist()

    def choose(self, context: dict, routing_key: str, rng: np.random.Generator) -> tuple[str, float, str]:
        """The action to take in one context, the probability it had (to log as propensity) and the version that
        acted (to log as model_version)."""
        probabilities, versions = self.serve([context], [routing_key])
        index = int(rng.choice(len(probabilities[0]), p=probabilities[0]))
        return self.actions[index], float(probabilities[0][index]), versions[0]
