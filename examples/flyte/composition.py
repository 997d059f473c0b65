"""Workflows built from other workflows: a subworkflow node and a launch-plan node."""

from flytekit import LaunchPlan, task, workflow


@task
def double(x: int) -> int:
    """Returns ``2 * x``."""
    return 2 * x


@task
def add(a: int, b: int) -> int:
    """Returns ``a + b``."""
    return a + b


@task
def square(x: int) -> int:
    """Returns ``x * x``."""
    return x * x


@workflow
def double_then_add_wf(x: int, y: int) -> int:
    """Returns ``2 * x + y``; runs as a subworkflow node of ``composed_wf``."""
    return add(a=double(x=x), b=y)


@workflow
def square_wf(x: int) -> int:
    """Returns ``x * x``; launched as a child execution by ``composed_wf``."""
    return square(x=x)


square_launch_plan = LaunchPlan.get_or_create(workflow=square_wf, name="square_launch_plan")


@workflow
def composed_wf(x: int = 3) -> int:
    """Returns ``(2 * x + 1) ** 2``: a subworkflow node feeding a launch-plan node (49 for x=3)."""
    inner = double_then_add_wf(x=x, y=1)
    return square_launch_plan(x=inner)
