"""The agent's side of the manifest: load the live model safely and keep serving.

This is what runs inside the agent in production, so it imports no Airflow and
never lets storage trouble reach the agent: it polls the manifest, downloads
and checks the artifact's sha256, loads it without executing stored code, and
only then swaps it in. An S3 outage, a missing or tampered artifact, or a model
of another feature encoding leaves the current model serving; the reason is in
`last_error`.

    client = AgentModelClient(load_agent("support-bot"), s3_client_from_env(), "agent-models")
    client.poll()                                  # call every few minutes
    action, propensity = client.choose(context, rng)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from agent_retraining.contract import context_column, manifest_key
from agent_retraining.features import encode_context, encoding_id
from agent_retraining.log_reader import FEATURE_TYPES
from agent_retraining.manifest import fetch_verified
from agent_retraining.spec import AgentSpec
from agent_retraining.training import LoadedModel, action_scores, load


def greedy_policy(scores: np.ndarray, exploration: float) -> np.ndarray:
    """Probabilities of a policy greedy on `scores` (rows x actions) that explores uniformly with probability
    `exploration`: every action keeps a propensity of at least exploration / actions, so its logs stay usable
    for off-policy evaluation."""
    probabilities = np.full(scores.shape, exploration / scores.shape[1])
    probabilities[np.arange(len(scores)), scores.argmax(axis=1)] += 1.0 - exploration
    return probabilities


class NoModel(Exception):
    """No model has been loaded yet (no manifest, or every artifact so far was refused)."""


@dataclass(frozen=True)
class LiveModel:
    etag: str
    version: str
    model: LoadedModel


class AgentModelClient:
    def __init__(self, spec: AgentSpec, s3, models_bucket: str, exploration: float = 0.1):
        self.spec = spec
        self.s3 = s3
        self.models_bucket = models_bucket
        self.exploration = exploration
        self.live: LiveModel | None = None
        self.last_error: str | None = None

    @property
    def version(self) -> str | None:
        return self.live.version if self.live else None

    def poll(self) -> bool:
        """Load the manifest's model if the manifest changed; True when a new model now serves."""
        try:
            response = self.s3.get_object(Bucket=self.models_bucket, Key=manifest_key(self.spec.agent_id))
            etag = response["ETag"]
            if self.live and etag == self.live.etag:
                return False
            manifest = json.loads(response["Body"].read())
            if manifest.get("encoding_id") != encoding_id(self.spec):
                raise ValueError(f"model {manifest['version']} was trained for another feature encoding")
            body = fetch_verified(self.s3, self.models_bucket, manifest["artifact_key"], manifest["sha256"])
            model = load(manifest["framework"], body, manifest["params"])
        except Exception as exc:  # anything at all: the agent keeps serving what it has
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        self.live, self.last_error = LiveModel(etag, manifest["version"], model), None
        return True

    def _context_table(self, contexts: list[dict]) -> pa.Table:
        return pa.table(
            {
                context_column(name): pa.array([c.get(name) for c in contexts], FEATURE_TYPES[feature.type])
                for name, feature in self.spec.context.items()
            }
        )

    def scores(self, contexts: list[dict]) -> np.ndarray:
        """Predicted P(reward = 1) of every action for each context: shape (contexts, actions)."""
        if self.live is None:
            raise NoModel(f"no model loaded for {self.spec.agent_id}: {self.last_error or 'not polled yet'}")
        return action_scores(self.spec, encode_context(self.spec, self._context_table(contexts)), [self.live.model])[0]

    def propensities(self, contexts: list[dict]) -> np.ndarray:
        """The policy the agent runs: greedy on the model, exploring uniformly with probability `exploration`."""
        return greedy_policy(self.scores(contexts), self.exploration)

    def choose(self, context: dict, rng: np.random.Generator) -> tuple[str, float]:
        """The action to take in one context, and the probability it had (to log as propensity)."""
        probabilities = self.propensities([context])[0]
        index = int(rng.choice(len(probabilities), p=probabilities))
        return self.spec.actions[index], float(probabilities[index])
