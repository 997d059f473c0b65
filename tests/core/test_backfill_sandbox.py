"""The generated backfill workflow registers on the sandbox (admin compiles it).

Running a backfill end to end is tested through the CLI (``tests/core/test_cli.py``).
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
