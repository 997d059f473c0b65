"""Which flyte-bridge errors a retry cannot fix, and how they fail an Airflow task.

A wrong input name or value, a launch plan, task, execution or gate that does not exist, a
connection that is not defined or whose settings are wrong, a gate already answered otherwise and
an execution name taken by another run fail the same way on every try, so they raise
``AirflowFailException``: the task fails without using up its retries. Everything else (an
unreachable or overloaded server, a timeout, a failed run) keeps Airflow's retries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException


class FlyteConnectionNotFoundError(AirflowNotFoundException):
    """A task's ``flyte_conn_id`` names no Airflow connection; a retry would not find it either.

    An ``AirflowNotFoundException``, as Airflow's own lookup raises, so code that catches that
    keeps working; the operators and the sensor fail without retries on it.

    Attributes:
        conn_id: The connection id that was looked up.
    """

    def __init__(self, conn_id: str) -> None:
        super().__init__(
            f"Airflow connection {conn_id!r} is not defined; expected a connection of type "
            f"'flyte' with that id (in the metadata database, an AIRFLOW_CONN_{conn_id.upper()} "
            "environment variable or a secrets backend), or flyte_conn_id naming one that exists"
        )
        self.conn_id = conn_id


def is_permanent(error: BaseException) -> bool:
    """Whether ``error`` would happen again on a retry: a missing connection, or what
    :func:`flyte_bridge.errors.is_permanent` says."""
    from flyte_bridge.errors import is_permanent as fails_again

    return isinstance(error, FlyteConnectionNotFoundError) or fails_again(error)


@contextlib.contextmanager
def fail_permanently() -> Iterator[None]:
    """Re-raises the permanent errors of the block as ``AirflowFailException`` (no retry)."""
    try:
        yield
    except Exception as error:
        if is_permanent(error):
            raise AirflowFailException(f"{type(error).__name__}: {error}") from error
        raise
