"""Signals: the values gate nodes wait for (approve, reject, wait_for_input)."""

from __future__ import annotations

from flyteidl.admin import signal_pb2
from flyteidl.core import identifier_pb2, literals_pb2, types_pb2

from flyte_bridge.sandbox import query as q
from flyte_bridge.sandbox.db import Database, now_ns
from flyte_bridge.sandbox.literal_types import describe, literal_fits
from flyte_bridge.sandbox.status import already_exists, invalid, missing

_LISTING = q.Listing(q.SIGNAL, "s")


def _check_signal_id(signal_id: identifier_pb2.SignalIdentifier) -> None:
    execution_id = signal_id.execution_id
    if not (execution_id.project and execution_id.domain and execution_id.name):
        raise missing("execution_id")
    if not signal_id.signal_id:
        raise missing("signal_id")


def _show(signal_id: identifier_pb2.SignalIdentifier) -> str:
    execution_id = signal_id.execution_id
    return (
        f"{signal_id.signal_id} of {execution_id.project}:{execution_id.domain}:{execution_id.name}"
    )


class Signals:
    """Signal rows keyed by (execution, signal id), each with a type and maybe a value."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _row(self, signal_id: identifier_pb2.SignalIdentifier):
        execution_id = signal_id.execution_id
        return self.db.query_one(
            "SELECT * FROM signals WHERE execution_project = ? AND execution_domain = ? AND "
            "execution_name = ? AND signal_id = ?",
            (execution_id.project, execution_id.domain, execution_id.name, signal_id.signal_id),
        )

    @staticmethod
    def _signal(row) -> signal_pb2.Signal:
        signal = signal_pb2.Signal(
            id=identifier_pb2.SignalIdentifier(
                signal_id=row["signal_id"],
                execution_id=identifier_pb2.WorkflowExecutionIdentifier(
                    project=row["execution_project"],
                    domain=row["execution_domain"],
                    name=row["execution_name"],
                ),
            ),
            type=types_pb2.LiteralType.FromString(row["type"]),
        )
        if row["value"] is not None:
            signal.value.ParseFromString(row["value"])
        return signal

    def get_or_create(
        self, signal_id: identifier_pb2.SignalIdentifier, signal_type: types_pb2.LiteralType
    ) -> signal_pb2.Signal:
        """The signal, created without a value the first time a gate asks for it."""
        _check_signal_id(signal_id)
        if signal_type.WhichOneof("type") is None:
            raise missing("type")
        type_bytes = signal_type.SerializeToString(deterministic=True)
        with self.db.transaction() as conn:
            row = self._row(signal_id)
            if row is None:
                now = now_ns()
                execution_id = signal_id.execution_id
                conn.execute(
                    "INSERT INTO signals (execution_project, execution_domain, execution_name, "
                    "signal_id, type, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        execution_id.project,
                        execution_id.domain,
                        execution_id.name,
                        signal_id.signal_id,
                        type_bytes,
                        now,
                        now,
                    ),
                )
                row = self._row(signal_id)
            elif row["type"] != type_bytes:
                raise already_exists(
                    f"signal {_show(signal_id)} already exists with a different type"
                )
        return self._signal(row)

    def list(self, request: signal_pb2.SignalListRequest) -> signal_pb2.SignalList:
        execution_id = request.workflow_execution_id
        if not (execution_id.project and execution_id.domain and execution_id.name):
            raise missing("execution_id")
        limit, offset = q.page(request.limit, request.token, rpc="ListSignals")
        query = q.Query()
        query.add("s.execution_project = ?", execution_id.project)
        query.add("s.execution_domain = ?", execution_id.domain)
        query.add("s.execution_name = ?", execution_id.name)
        q.compile_filters(_LISTING, request.filters, query)
        sort = request.sort_by if request.HasField("sort_by") else None
        rows = self.db.query(
            f"SELECT s.* FROM signals s {query.sql()} {q.order_by(_LISTING, sort)} "
            "LIMIT ? OFFSET ?",
            [*query.params, limit, offset],
        )
        return signal_pb2.SignalList(
            signals=[self._signal(row) for row in rows],
            token=q.next_token(limit, offset, len(rows)),
        )

    def set(self, signal_id: identifier_pb2.SignalIdentifier, value: literals_pb2.Literal) -> None:
        """Sets (or overwrites) the value of a signal a gate has already created."""
        _check_signal_id(signal_id)
        if value.WhichOneof("value") is None:
            raise missing("value")
        with self.db.transaction() as conn:
            row = self._row(signal_id)
            if row is None:
                raise invalid(
                    f"failed to validate that signal [{_show(signal_id)}] exists: no gate has "
                    "created it (the gate node has not started yet, or the workflow has no gate "
                    "with this signal id)"
                )
            signal_type = types_pb2.LiteralType.FromString(row["type"])
            if not literal_fits(value, signal_type):
                raise invalid(
                    f"requested signal value [{_show(signal_id)}] is not castable to existing "
                    f"signal type [{describe(signal_type)}]"
                )
            conn.execute(
                "UPDATE signals SET value = ?, updated_at = ? WHERE id = ?",
                (value.SerializeToString(), now_ns(), row["id"]),
            )
