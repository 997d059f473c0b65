"""A pipeline that stops twice for a person: an approval gate and a typed input."""

from datetime import timedelta

from flytekit import approve, task, wait_for_input, workflow


@task
def prepare_release(version: int) -> int:
    """Builds the release candidate number that a reviewer approves."""
    return version + 1


@task
def publish_release(candidate: int, rollout_percent: float) -> str:
    """Publishes the approved candidate to the given share of users."""
    return f"release {candidate} at {rollout_percent:g}%"


@workflow
def approval_wf(version: int = 1) -> str:
    """Waits on the approve gate ``review`` and the float signal ``rollout_percent``.

    Approving ``review`` and setting ``rollout_percent`` to 25.0 with ``version=1`` returns
    ``"release 2 at 25%"``; rejecting ``review`` fails the execution.
    """
    candidate = prepare_release(version=version)
    approved = approve(candidate, "review", timeout=timedelta(minutes=30))
    rollout_percent = wait_for_input(
        "rollout_percent", timeout=timedelta(minutes=30), expected_type=float
    )
    approved >> rollout_percent
    return publish_release(candidate=approved, rollout_percent=rollout_percent)
