"""Prints what importing the Airflow provider's operators costs a DAG file, over ``airflow.sdk``.

Every DAG file that uses the provider pays this at every parse, so the operators and sensors
module must not load flyte-bridge's client or the gRPC stubs. Each figure is the median of
fresh interpreters: the time to import a module once ``airflow.sdk`` is already imported, beside
``flytekit.remote`` (what a FlyteRemote-based operator would cost) for scale. Budget: 50 ms.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

RUNS = 7
BUDGET_MS = 50.0
PROBE = """
import sys, time
import airflow.sdk
start = time.perf_counter()
{imports}
elapsed = (time.perf_counter() - start) * 1000
heavy = [m for m in ("grpc", "flyteidl", "flyte_bridge.client", "flytekit") if m in sys.modules]
print(f"{{elapsed:.3f}} {{','.join(heavy)}}")
"""

CASES = {
    "airflow_provider operators + sensors": (
        "import airflow_provider.operators.flyte, airflow_provider.sensors.flyte"
    ),
    "flytekit.remote (for scale)": "import flytekit.remote",
}


def measure(imports: str) -> tuple[float, str]:
    """Median import time in ms over RUNS fresh interpreters, and the heavy modules loaded."""
    times, heavy = [], ""
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(imports=imports)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        times.append(float(out[0]))
        heavy = out[1] if len(out) > 1 else ""
    return statistics.median(times), heavy


def main() -> int:
    print(f"import cost over airflow.sdk, median of {RUNS} fresh interpreters")
    failed = False
    for label, imports in CASES.items():
        ms, heavy = measure(imports)
        print(f"  {label:40s} {ms:8.1f} ms   heavy modules loaded: {heavy or 'none'}")
        if label.startswith("airflow_provider"):
            failed = ms > BUDGET_MS or bool(heavy)
    print(f"budget for the operators module: {BUDGET_MS:.0f} ms, no gRPC/client modules")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
