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
