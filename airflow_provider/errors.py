"""Which flyte-bridge errors a retry cannot fix, and how they fail an Airflow task.

A wrong input name or value, a launch plan, task, execution or gate that does not exist, a
connection whose settings are wrong, a gate already answered otherwise and an execution name
taken by another run fail the same way on every try, so they raise
``AirflowFailException``: the task fails without using up its retries. Everything else (an
unreachable or overloaded server, a timeout, a failed run) keeps Airflow's retries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from airflow.sdk.exceptions import AirflowFailException


def is_permanent(error: BaseException) -> bool:
    """Whether ``error`` would happen again on a retry; see
    :func:`flyte_bridge.errors.is_permanent`."""
    from flyte_bridge.errors import is_permanent as fails_again

    return fails_again(error)


@contextlib.contextmanager
def fail_permanently() -> Iterator[None]:
    """Re-raises the permanent errors of the block as ``AirflowFailException`` (no retry)."""
    try:
        yield
    except Exception as error:
        if is_permanent(error):
            raise AirflowFailException(f"{type(error).__name__}: {error}") from error
        raise
