"""Prints the import time of ``flyte_bridge`` and its client beside ``flytekit.remote``.

Each figure is the median over fresh interpreters of the time one ``import`` statement takes
(interpreter start-up excluded), with the heavy modules it pulled in. The budget for
``import flyte_bridge`` is 150 ms; the client loads grpc and the flyteidl stubs, so it is shown
separately, and ``flytekit.remote`` is what FlyteRemote users pay for the same job.

Usage: ``python bench/bench_import.py [--runs N]``
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys

BUDGET_MS = 150.0
PROBE = """
import sys, time
start = time.perf_counter()
import {module}
elapsed = (time.perf_counter() - start) * 1000
heavy = [m for m in ("grpc", "flyteidl", "flytekit", "airflow", "dagster") if m in sys.modules]
print(f"{{elapsed:.3f}} {{','.join(heavy) or '-'}}")
"""
MODULES = ("flyte_bridge", "flyte_bridge.client", "flytekit.remote")


def measure(module: str, runs: int) -> tuple[float, str]:
    """Median import time of ``module`` in ms over ``runs`` fresh interpreters, and its loads."""
    times, heavy = [], ""
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(module=module)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        times.append(float(out[0]))
        heavy = out[1]
    return statistics.median(times), heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per module")
    runs = parser.parse_args().runs

    results = {}
    for module in MODULES:
        if importlib.util.find_spec(module.split(".")[0]) is None:
            print(f"{module:<22} not installed")
            continue
        results[module] = measure(module, runs)

    reference = results.get("flytekit.remote", (None, ""))[0]
    print(f"{'module':<22} {'median ms':>10} {'vs flytekit.remote':>20}  loads")
    for module, (millis, heavy) in results.items():
        ratio = (
            f"{reference / millis:.1f}x faster" if reference and module != "flytekit.remote" else ""
        )
        print(f"{module:<22} {millis:>10.1f} {ratio:>20}  {heavy}")
    base = results.get("flyte_bridge")
    if base is not None:
        verdict = "within" if base[0] <= BUDGET_MS else "OVER"
        print(f"import flyte_bridge: {base[0]:.1f} ms, {verdict} the {BUDGET_MS:.0f} ms budget")


if __name__ == "__main__":
    main()
