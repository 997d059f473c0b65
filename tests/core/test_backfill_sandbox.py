"""The generated backfill workflow registers on the sandbox (admin compiles it), and a
schedule without a kickoff input backfills end to end (C21).

Running a backfill with a kickoff input end to end is tested through the CLI
(``tests/core/test_cli.py``).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import grpc
import pytest
from flyteidl.admin import common_pb2
from flyteidl.core import identifier_pb2

from flyte_bridge.backfill import plan_backfill

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sandbox"))
from flyte_examples import DOMAIN, EXAMPLES, PROJECT, pyflyte  # noqa: E402

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


def test_c21_a_schedule_without_a_kickoff_input_backfills_one_run_per_tick(admin, sandbox_client):
    from flyteidl.admin import launch_plan_pb2, schedule_pb2

    ping = sandbox_client.fetch_launch_plan("hello.ping_wf")  # no inputs, no outputs
    hourly = identifier_pb2.Identifier(
        resource_type=identifier_pb2.LAUNCH_PLAN,
        project=PROJECT,
        domain=DOMAIN,
        name="ping_hourly",
        version=VERSION,
    )
    spec = launch_plan_pb2.LaunchPlanSpec(
        workflow_id=ping.spec.workflow_id,
        entity_metadata=launch_plan_pb2.LaunchPlanMetadata(
            schedule=schedule_pb2.Schedule(
                cron_schedule=schedule_pb2.CronSchedule(schedule="0 * * * *")
            )
        ),
    )
    try:
        admin.CreateLaunchPlan(launch_plan_pb2.LaunchPlanCreateRequest(id=hourly, spec=spec))
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS  # another worker registered it
    start = dt.datetime(2024, 3, 1, 1, tzinfo=dt.timezone.utc)

    result = sandbox_client.launch_backfill("ping_hourly", start, start + dt.timedelta(hours=2))
    done = sandbox_client.sync(sandbox_client.wait(result.execution, timeout=180))

    assert result.plan == tuple(start + dt.timedelta(hours=h) for h in range(3))
    assert done.is_successful
    children = [
        node.child_execution for node in done.node_executions.values() if node.kind == "launch_plan"
    ]
    assert len(children) == 3 and all(child.is_successful for child in children)
    assert all(sandbox_client.fetch_inputs(child) == {} for child in children)
