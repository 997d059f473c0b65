"""The generated backfill workflow registers and runs on the sandbox (admin compiles it)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import grpc
import pytest
from flyteidl.admin import common_pb2, execution_pb2
from flyteidl.core import identifier_pb2

from flyte_bridge.backfill import plan_backfill
from flyte_bridge.client import FlyteClient
from flyte_bridge.config import ClientConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sandbox"))
from flyte_examples import DOMAIN, EXAMPLES, PROJECT, pyflyte, unique_name  # noqa: E402

VERSION = "backfill-tests"


@pytest.fixture(scope="module")
def daily_report(admin, flyte_sandbox_config):
    """The registered ``daily_report`` launch plan: cron ``0 6 * * *``, kickoff ``kickoff_time``."""
    registered = pyflyte(
        flyte_sandbox_config,
        "register",
        "--project",
        PROJECT,
        "--domain",
        DOMAIN,
        "--version",
        VERSION,
        str(EXAMPLES / "daily_report.py"),
    )
    assert registered.returncode == 0, registered.stderr
    launch_plan_id = identifier_pb2.Identifier(
        resource_type=identifier_pb2.LAUNCH_PLAN,
        project=PROJECT,
        domain=DOMAIN,
        name="daily_report",
        version=VERSION,
    )
    return admin.GetLaunchPlan(common_pb2.ObjectGetRequest(id=launch_plan_id))


def test_backfill_runs_every_tick_of_the_inclusive_window_with_its_kickoff_time(
    admin, flyte_sandbox, daily_report
):
    start, end = dt.datetime(2024, 1, 1, 6), dt.datetime(2024, 1, 3, 6)
    plan = plan_backfill(daily_report, start, end, parallel=True)
    admin.CreateWorkflow(plan.workflow_create_request())
    admin.CreateLaunchPlan(plan.launch_plan_create_request())
    name = unique_name("bf")
    admin.CreateExecution(
        execution_pb2.ExecutionCreateRequest(
            project=PROJECT,
            domain=DOMAIN,
            name=name,
            spec=execution_pb2.ExecutionSpec(launch_plan=plan.backfill_launch_plan_id),
        )
    )

    with FlyteClient(ClientConfig.for_sandbox(flyte_sandbox.endpoint)) as client:
        done = client.wait(name, timeout=180, poll_interval=0.5, sync_nodes=True)
        assert done.phase_name == "SUCCEEDED", done.error
        children = [done.node_executions[f"n{i}"].child_execution for i in range(3)]
        reports = [client.fetch_outputs(child)["o0"] for child in children]
    assert reports == [
        "report eu 2024-01-01: 10 events",
        "report eu 2024-01-02: 20 events",
        "report eu 2024-01-03: 30 events",
    ]


def test_replanning_with_other_settings_registers_without_a_structure_conflict(admin, daily_report):
    start, end = dt.datetime(2024, 2, 1), dt.datetime(2024, 2, 2, 12)
    parallel = plan_backfill(daily_report, start, end, parallel=True)
    serial = plan_backfill(daily_report, start, end, parallel=False)
    admin.CreateWorkflow(parallel.workflow_create_request())
    admin.CreateWorkflow(serial.workflow_create_request())
    with pytest.raises(grpc.RpcError) as again:
        admin.CreateWorkflow(serial.workflow_create_request())
    assert again.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert parallel.version != serial.version
