"""A task that sleeps long enough to be terminated."""

import time

from flytekit import task, workflow


@task
def sleep_for(seconds: int) -> str:
    """Sleeps ``seconds`` seconds."""
    time.sleep(seconds)
    return f"slept {seconds}s"


@workflow
def long_sleep_wf(seconds: int = 600) -> str:
    """Runs for ten minutes by default: start it, then terminate it."""
    return sleep_for(seconds=seconds)
