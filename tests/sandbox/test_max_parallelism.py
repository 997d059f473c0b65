"""A zero or negative max_parallelism means "not set", as in flyteadmin, never "no slot at all".

Admin's MergeIntoExecConfig takes a level's max_parallelism (request, then launch plan) only when
it is > 0, else the default (25); propeller limits only when the value is > 0.
"""

from __future__ import annotations

import pytest
from admin_builders import (
    DOMAIN,
    PROJECT,
    ident,
    integer,
    simple_launch_plan,
    unique,
)
from flyte_examples import EXAMPLES_VERSION, unique_name, wait_until
from flyteidl.admin import common_pb2, execution_pb2, launch_plan_pb2
from flyteidl.core import execution_pb2 as core_execution_pb2
from flyteidl.core import identifier_pb2, literals_pb2

from flyte_bridge.sandbox.executions import DEFAULT_MAX_PARALLELISM

WorkflowPhase = core_execution_pb2.WorkflowExecution.Phase


def _create(admin, launch_plan_id, max_parallelism: int, name: str = "", **inputs):
    request = execution_pb2.ExecutionCreateRequest(
        project=PROJECT,
        domain=DOMAIN,
        name=name,
        spec=execution_pb2.ExecutionSpec(
            launch_plan=launch_plan_id, max_parallelism=max_parallelism
        ),
        inputs=literals_pb2.LiteralMap(literals=inputs),
    )
    execution_id = admin.CreateExecution(request).id
    return admin.GetExecution(execution_pb2.WorkflowExecutionGetRequest(id=execution_id))


def _launch_plan_with(admin, max_parallelism: int):
    """A copy of a registered launch plan under a new name, with ``max_parallelism`` set."""
    source, _ = simple_launch_plan(admin, "par")
    spec = admin.GetLaunchPlan(common_pb2.ObjectGetRequest(id=source)).spec
    spec.max_parallelism = max_parallelism
    launch_plan_id = ident(identifier_pb2.LAUNCH_PLAN, unique("par-lp"))
    admin.CreateLaunchPlan(launch_plan_pb2.LaunchPlanCreateRequest(id=launch_plan_id, spec=spec))
    return launch_plan_id


@pytest.mark.slow
def test_negative_max_parallelism_runs_with_the_default(admin, flyte_examples):
    launch_plan_id = identifier_pb2.Identifier(
        resource_type=identifier_pb2.LAUNCH_PLAN,
        project=PROJECT,
        domain=DOMAIN,
        name="hello.hello_wf",
        version=EXAMPLES_VERSION,
    )

    execution = _create(admin, launch_plan_id, -3, name=unique_name("par"))

    assert execution.spec.max_parallelism == DEFAULT_MAX_PARALLELISM
    request = execution_pb2.WorkflowExecutionGetRequest(id=execution.id)
    done = wait_until(
        lambda: (
            phase
            if (phase := admin.GetExecution(request).closure.phase)
            in (WorkflowPhase.SUCCEEDED, WorkflowPhase.FAILED, WorkflowPhase.ABORTED)
            else None
        ),
        timeout=120,
        what="the execution to end",
    )
    assert done == WorkflowPhase.SUCCEEDED


@pytest.mark.parametrize(
    ("request_value", "launch_plan_value", "resolved"),
    [
        (-1, 4, 4),
        (0, -2, DEFAULT_MAX_PARALLELISM),
        (-5, -2, DEFAULT_MAX_PARALLELISM),
        (3, -2, 3),
        (3, 4, 3),
    ],
)
def test_only_a_positive_value_of_a_level_is_taken(
    bare_admin, request_value, launch_plan_value, resolved
):
    launch_plan_id = _launch_plan_with(bare_admin, launch_plan_value)

    execution = _create(bare_admin, launch_plan_id, request_value, x=integer(1))

    assert execution.spec.max_parallelism == resolved


def test_launch_plan_keeps_the_max_parallelism_it_was_registered_with(bare_admin):
    launch_plan_id = _launch_plan_with(bare_admin, -2)

    stored = bare_admin.GetLaunchPlan(common_pb2.ObjectGetRequest(id=launch_plan_id))

    assert stored.spec.max_parallelism == -2
