"""Importing the package and its lazy names stays cheap: no grpc until a client is made."""

from __future__ import annotations

import subprocess
import sys


def test_import_and_lazy_names_load_no_grpc():
    code = (
        "import sys, flyte_bridge;"
        "flyte_bridge.ExecutionId, flyte_bridge.FlyteClient, flyte_bridge.AsyncFlyteClient;"
        "print(','.join(m for m in ('grpc', 'flytekit', 'airflow', 'dagster') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_clients_and_the_cli_load_neither_flytekit_nor_an_orchestrator():
    code = (
        "import sys, flyte_bridge.client, flyte_bridge.aio, flyte_bridge.watcher, flyte_bridge.cli;"
        "print(','.join(m for m in ('flytekit', 'airflow', 'dagster') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_module_outside_the_sandbox_imports_flytekit_or_an_orchestrator():
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "flyte_bridge"
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if "sandbox" in path.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                if name.split(".")[0] in ("flytekit", "airflow", "dagster"):
                    offenders.append(f"{path.relative_to(package)}:{node.lineno} {name}")

    assert offenders == []
