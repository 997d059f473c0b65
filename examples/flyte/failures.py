"""Tasks that fail: once then succeed on retry, always, and beside a task that still finishes."""

import os

from flytekit import WorkflowFailurePolicy, task, workflow
from flytekit.exceptions.user import FlyteRecoverableException


@task(retries=2)
def flaky(value: int) -> str:
    """Fails on attempt 0 with a recoverable error and succeeds on attempt 1.

    The attempt number comes from ``FLYTE_ATTEMPT_NUMBER``, which the engine sets per attempt, so
    no state has to be kept between attempts.
    """
    attempt = int(os.environ.get("FLYTE_ATTEMPT_NUMBER", "0"))
    if attempt == 0:
        raise FlyteRecoverableException("flaky fails on its first attempt")
    return f"value {value} after {attempt} retry"


@workflow
def retry_wf(value: int = 7) -> str:
    """Returns ``"value 7 after 1 retry"`` after one failed attempt of ``flaky``."""
    return flaky(value=value)


@task
def always_fail(reason: str) -> None:
    """Raises ``ValueError(reason)``: a non-recoverable user error, never retried."""
    raise ValueError(reason)


@workflow
def failing_wf(reason: str = "this task always fails") -> None:
    """Ends FAILED: error code ``USER:RuntimeError``, the message names ``ValueError``."""
    always_fail(reason=reason)


@task
def slow_success(seconds: float) -> str:
    """Sleeps briefly and succeeds, so that it is still running when its sibling fails."""
    import time

    time.sleep(seconds)
    return "finished"


@workflow(failure_policy=WorkflowFailurePolicy.FAIL_AFTER_EXECUTABLE_NODES_COMPLETE)
def keep_going_wf(seconds: float = 2.0) -> str:
    """Fails, but only after ``slow_success`` (independent of the failing task) has SUCCEEDED."""
    always_fail(reason="one branch fails")
    return slow_success(seconds=seconds)
