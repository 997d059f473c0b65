"""A dynamic fan-out whose final sum fails while a blocker file exists, for RecoverExecution.

The squares always succeed; ``add_up`` fails as long as ``blocker`` names an existing file, so a
test can fail a run, remove the file and recover it: the recovered dynamic node reuses the old
spec, its squares are recovered and only ``add_up`` runs again.
"""

import os

from flytekit import dynamic, task, workflow


@task
def square(item: int) -> int:
    """Returns ``item * item``."""
    return item * item


@task
def add_up(values: list[int], blocker: str) -> int:
    """Sums the values, unless the blocker file exists."""
    if blocker and os.path.exists(blocker):
        raise RuntimeError(f"blocked by {blocker}")
    return sum(values)


@dynamic
def square_all(count: int, blocker: str) -> int:
    """One ``square`` per item below ``count``, summed by ``add_up``."""
    return add_up(values=[square(item=item) for item in range(count)], blocker=blocker)


@workflow
def blocked_sum_wf(count: int = 3, blocker: str = "") -> int:
    """Returns the sum of the squares below ``count`` (5 for 3) once nothing blocks it."""
    return square_all(count=count, blocker=blocker)
