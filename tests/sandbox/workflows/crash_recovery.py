"""Workflows that the crash-recovery test has in flight when it kills the sandbox."""

import os
import time
from datetime import timedelta

from flytekit import approve, sleep, task, workflow

SLEEP_SECONDS = 20


@task
def double(x: int) -> int:
    """Returns twice ``x``."""
    return 2 * x


@task
def hang_on_first_attempt(x: int) -> int:
    """Hangs on attempt 0, so that the sandbox is killed under it; a retry returns ``x + 1``."""
    if os.environ.get("FLYTE_ATTEMPT_NUMBER", "0") == "0":
        time.sleep(600)
    return x + 1


@workflow
def double_wf(x: int = 1) -> int:
    """Finishes at once: the execution that must survive the restart as it was."""
    return double(x=x)


@workflow
def gate_wf(x: int = 1) -> int:
    """Doubles ``x``, waits for the approval ``go``, doubles again."""
    approved = approve(double(x=x), "go", timeout=timedelta(minutes=10))
    return double(x=approved)


@workflow
def sleep_wf(x: int = 1) -> int:
    """Sleeps SLEEP_SECONDS, then doubles ``x``."""
    nap = sleep(timedelta(seconds=SLEEP_SECONDS))
    result = double(x=x)
    nap >> result
    return result


@workflow
def task_wf(x: int = 1) -> int:
    """Runs one task whose first attempt hangs."""
    return hang_on_first_attempt(x=x)
