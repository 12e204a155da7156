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
# The DAG's order: the data gate, then features and training, evaluation, release; the agent's client reads what
# release writes; views read every stage's records; dev tools may use anything.
RANK = {"core": 0, "datagate": 1, "models": 2, "evaluate": 3, "serving": 4, "release": 5, "views": 6, "dev": 7}


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


def test_the_agent_side_imports_no_airflow_no_great_expectations_and_no_dev_tool():
    code = (
        "import json, sys; import agent_retraining.serving.client; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'great_expectations') "
        "or m.startswith(('agent_retraining.dev', 'agent_retraining.views', 'agent_retraining.evaluate')))))"
    )
    done = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(INCLUDE)}, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert json.loads(done.stdout) == []
