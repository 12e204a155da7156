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
