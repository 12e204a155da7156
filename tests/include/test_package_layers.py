"""The package reads as the pipeline: each stage imports only the core and the stages before it, and what runs
inside the agent (serving/) pulls in no Airflow, no Great Expectations and no dev tool."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

INCLUDE = Path(__file__).resolve().parents[2] / "include"
PACKAGE = INCLUDE / "agent_retraining"
# The DAG's order: the data gate, then features and training; what the agent runs (serving: the ONNX loader and the
# client, which reads what release writes) comes before evaluation, which checks the agent's runtime scores what
# the gate judged; then release; tracking mirrors what evaluation and release decided (into MLflow); views read
# every stage's records; dev tools may use anything.
RANK = {"core": 0, "datagate": 1, "models": 2, "serving": 3, "evaluate": 4, "release": 5, "tracking": 6, "views": 7,
        "dev": 8}  # fmt: skip


def _stage(module: str) -> str:
    if module.startswith("agent_retraining.models.candidates"):
        return "core"  # the registry: the spec checks candidate names and hyperparameters against it
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in RANK else "core"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agent_retraining"):
            is_package = (PACKAGE / Path(*node.module.split(".")[1:]) / "__init__.py").exists()
            found |= {f"{node.module}.{alias.name}" for alias in node.names} if is_package else {node.module}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("agent_retraining")}
    return found


def test_no_module_imports_a_later_stage():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(INCLUDE).with_suffix("").parts).removesuffix(".__init__")
        upward += [f"{module} imports {dep}" for dep in _imports(path) if RANK[_stage(dep)] > RANK[_stage(module)]]
    assert not upward


def test_every_stage_is_a_package_named_after_the_dag():
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} == set(RANK) - {"core"}


def test_the_agent_side_imports_no_airflow_no_great_expectations_no_training_library_and_no_dev_tool():
    """Loading and scoring a model from its ONNX export, in a fresh interpreter, pulls in none of them."""
    code = (
        "import json, sys; import numpy as np; from agent_retraining.serving.client import ServingModel; "
        "from agent_retraining.serving.portable_model import PortableModel; "
        "from agent_retraining.serving.conformance import FOLDER, load_vectors; "
        "manifest, files, cases = load_vectors(); entry = manifest; "
        "model = PortableModel((FOLDER / files[entry['onnx']['key']]).read_bytes()); "
        "ServingModel(entry['version'], '', entry['encoding'], model).scores([c['context'] for c in cases]); "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('airflow', 'great_expectations', 'sklearn', 'lightgbm', 'torch') "
        "or m.startswith(('agent_retraining.dev', 'agent_retraining.views', 'agent_retraining.evaluate')))))"
    )
    done = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(INCLUDE)}, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert json.loads(done.stdout) == []
