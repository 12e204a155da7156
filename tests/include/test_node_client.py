"""The Node.js client (clients/node/) runs its own tests as part of this suite: encoding, policy, routing,
manifest checks, the client's refusals and the log writer, against a folder store and ONNX models it writes
itself (no S3 server). `make node-client` installs its packages from package-lock.json."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "clients" / "node"


def test_the_node_client_passes_its_own_tests():
    node = shutil.which("node")
    assert node, "node is not on PATH: the Node.js client needs Node 20 or later"
    assert (CLIENT / "node_modules" / "onnxruntime-node").is_dir(), (
        "clients/node has no node_modules: run `make node-client` (npm ci)"
    )
    result = subprocess.run(
        [node, "--test", "clients/node/test/"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"node --test failed:\n{result.stdout}\n{result.stderr}"


def test_the_node_client_featurizes_texts_and_embeddings_as_training_does():
    """Train/serve parity across languages: for random Unicode, control characters, empty and very long texts and
    embeddings of any scale, the Node client's context block equals the Python one's, float for float."""
    import json

    import numpy as np

    from agent_retraining.models.encoding import context_block, context_table, encoding_of
    from agent_retraining.spec import load_agent
    from tests.include.test_text_and_embedding import random_texts

    encoding = encoding_of(load_agent("llm-router"))
    rng = np.random.default_rng(11)
    contexts = []
    for number, text in enumerate(random_texts(rng, 300)):
        vector = (rng.normal(size=32) * 10.0 ** rng.integers(-8, 8)).tolist() if number % 5 else None
        contexts.append({"message": text if number % 11 else None, "message_embedding": vector,
                         "customer_tier": ["free", "pro", "gold", None][number % 4],
                         "open_conversations": int(rng.integers(-5, 30))})  # fmt: skip
    python = context_block(encoding, context_table(encoding, contexts))
    script = (
        "const { encodeContext } = require('./clients/node/src/encoding');"
        "const { encoding, contexts } = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(contexts.map((c) => Array.from(encodeContext(encoding, c)))));"
    )
    result = subprocess.run(
        [shutil.which("node"), "-e", script],
        cwd=REPO,
        input=json.dumps({"encoding": encoding, "contexts": contexts}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    node = np.array(json.loads(result.stdout), dtype=np.float32)
    assert node.shape == python.shape
    assert np.array_equal(node, python), np.argwhere(node != python)[:5]
