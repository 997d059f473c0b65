"""Prints the sandbox's figures: cold start, per-task overhead, 100 trivial executions, a map task.

- cold start: a fresh interpreter imports the sandbox, starts it on a free port with a new data
  directory, and a client gets its first answer (GetDomains); median over ``--runs`` starts.
- per-task overhead: ``hello_wf`` (one trivial task) launched one at a time; from the
  execution's ``created_at`` to the task attempt recorded SUCCEEDED, and to the execution
  recorded SUCCEEDED (medians over ``--runs`` executions).
- 100 trivial executions: ``hello_wf`` launched ``--count`` times at once; wall time from the
  first CreateExecution to the last execution recorded SUCCEEDED.
- map task over 100 items: ``map_pipeline.tolerant_parse_wf`` (an array node of trivial
  ``parse_record`` items, then one ``total`` task) launched over ``--items`` records and over one
  record; wall time from CreateExecution to the execution recorded SUCCEEDED (medians over
  ``--map-runs``), and the cost of one more item: the difference divided by ``items - 1``.

Usage: ``python bench/bench_sandbox.py [--runs 5] [--count 100] [--items 100] [--map-runs 3]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HELLO = REPO / "examples" / "flyte" / "hello.py"
MAP_PIPELINE = REPO / "examples" / "flyte" / "map_pipeline.py"
VERSION = "bench-v1"
PROBE = """
import time
start = time.perf_counter()
import grpc
from flyteidl.admin import project_pb2
from flyteidl.service import admin_pb2_grpc
from flyte_bridge.sandbox import start_sandbox
sandbox = start_sandbox(port=0, temporary=True)
with grpc.insecure_channel(sandbox.endpoint) as channel:
    admin_pb2_grpc.AdminServiceStub(channel).GetDomains(project_pb2.GetDomainRequest())
print(f"{(time.perf_counter() - start) * 1000:.1f}")
sandbox.stop()
"""


def cold_start_ms(runs: int) -> float:
    """Median milliseconds from interpreter start-up (excluded) to the first answered RPC."""
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
            ).stdout.split()[-1]
        )
        for _ in range(runs)
    ]
    return statistics.median(times)


def _register(config: Path) -> None:
    pyflyte = str(Path(sys.executable).parent / "pyflyte")
    subprocess.run(
        [
            pyflyte,
            "--config",
            str(config),
            "register",
            "--project",
            "flytesnacks",
            "--domain",
            "development",
            "--version",
            VERSION,
            str(HELLO),
            str(MAP_PIPELINE),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )


def _string(value: str):
    from flyteidl.core import literals_pb2

    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(string_value=value))
    )


def _launch(admin, launch_plan_id, name: str, inputs=None):
    from flyteidl.admin import execution_pb2
    from flyteidl.core import literals_pb2

    request = execution_pb2.ExecutionCreateRequest(
        project="flytesnacks",
        domain="development",
        name=name,
        spec=execution_pb2.ExecutionSpec(launch_plan=launch_plan_id),
        inputs=literals_pb2.LiteralMap(literals=inputs or {"name": _string("bench")}),
    )
    return admin.CreateExecution(request).id


def _launch_plan(name: str):
    from flyteidl.core import identifier_pb2

    return identifier_pb2.Identifier(
        resource_type=identifier_pb2.LAUNCH_PLAN,
        project="flytesnacks",
        domain="development",
        name=name,
        version=VERSION,
    )


def _map_seconds(admin, items: int, name: str) -> float:
    """Seconds from launching ``tolerant_parse_wf`` over ``items`` records to its SUCCEEDED."""
    from flyteidl.core import literals_pb2

    records = literals_pb2.Literal(
        collection=literals_pb2.LiteralCollection(
            literals=[_string(f"k{index}={index}") for index in range(items)]
        )
    )
    launch_plan_id = _launch_plan("map_pipeline.tolerant_parse_wf")
    start = time.perf_counter()
    execution = _wait(admin, _launch(admin, launch_plan_id, name, {"records": records}))
    elapsed = time.perf_counter() - start
    if execution.closure.phase != 4:
        raise RuntimeError(f"{name} ended in phase {execution.closure.phase}")
    return elapsed


def _wait(admin, execution_id, timeout: float = 300.0):
    from flyteidl.admin import execution_pb2

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = admin.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=execution_id))
        if execution.closure.phase in (4, 6, 7, 8):
            return execution
        time.sleep(0.05)
    raise TimeoutError(f"{execution_id.name} did not finish in {timeout}s")


def _task_success_seconds(admin, execution) -> float:
    from flyteidl.admin import task_execution_pb2
    from flyteidl.core import identifier_pb2

    node_id = identifier_pb2.NodeExecutionIdentifier(node_id="n0", execution_id=execution.id)
    attempts = admin.ListTaskExecutions(
        task_execution_pb2.TaskExecutionListRequest(node_execution_id=node_id, limit=10)
    ).task_executions
    created = execution.closure.created_at.ToNanoseconds()
    return (attempts[-1].closure.updated_at.ToNanoseconds() - created) / 1e9


def executions(
    runs: int, count: int, items: int, map_runs: int
) -> tuple[float, float, float, int, float, float]:
    """(median s to task success, median s to execution success, s for ``count`` runs, failed,
    median s for a map over ``items``, median s for a map over one item)."""
    import grpc
    from flyteidl.service import admin_pb2_grpc

    from flyte_bridge.sandbox import start_sandbox

    with tempfile.TemporaryDirectory() as scratch, start_sandbox(port=0, temporary=True) as sandbox:
        config = sandbox.write_flytekit_config(Path(scratch) / "config.yaml")
        _register(config)
        channel = grpc.insecure_channel(sandbox.endpoint)
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        launch_plan_id = _launch_plan("hello.hello_wf")
        to_task, to_execution = [], []
        for index in range(runs):
            execution = _wait(admin, _launch(admin, launch_plan_id, f"single-{index}"))
            to_task.append(_task_success_seconds(admin, execution))
            to_execution.append(
                (
                    execution.closure.updated_at.ToNanoseconds()
                    - execution.closure.created_at.ToNanoseconds()
                )
                / 1e9
            )
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=16) as pool:
            ids = list(
                pool.map(lambda i: _launch(admin, launch_plan_id, f"many-{i}"), range(count))
            )
            finished = list(pool.map(lambda i: _wait(admin, i), ids))
        elapsed = time.perf_counter() - start
        map_many = [_map_seconds(admin, items, f"map-many-{i}") for i in range(map_runs)]
        map_one = [_map_seconds(admin, 1, f"map-one-{i}") for i in range(map_runs)]
        channel.close()
    failed = sum(1 for e in finished if e.closure.phase != 4)
    return (
        statistics.median(to_task),
        statistics.median(to_execution),
        elapsed,
        failed,
        statistics.median(map_many),
        statistics.median(map_one),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--map-runs", type=int, default=3)
    args = parser.parse_args()
    cold = cold_start_ms(args.runs)
    print(f"cold start to first answered RPC: {cold:.0f} ms (median of {args.runs})")
    to_task, to_execution, elapsed, failed, map_many, map_one = executions(
        args.runs, args.count, args.items, args.map_runs
    )
    print(f"per-task overhead, launch to task attempt SUCCEEDED: {to_task:.2f} s (median)")
    print(f"launch to execution SUCCEEDED, one trivial task: {to_execution:.2f} s (median)")
    print(
        f"{args.count} trivial executions end to end: {elapsed:.1f} s "
        f"({args.count / elapsed:.1f} executions/s, {failed} not SUCCEEDED)"
    )
    per_item = (map_many - map_one) / max(1, args.items - 1)
    print(
        f"map_task over {args.items} items, launch to execution SUCCEEDED: {map_many:.1f} s "
        f"(median of {args.map_runs}; over 1 item: {map_one:.2f} s; "
        f"{per_item * 1000:.0f} ms per additional item)"
    )


if __name__ == "__main__":
    main()
