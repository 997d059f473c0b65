import subprocess
import sys


def test_importing_flyte_bridge_loads_no_orchestrator_or_flytekit():
    code = (
        "import sys, flyte_bridge, flyte_bridge.errors;"
        "bad = [m for m in ('flytekit', 'airflow', 'dagster') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
