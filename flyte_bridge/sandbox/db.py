"""SQLite persistence for the sandbox: one file, WAL journal, every write one transaction.

Records keep their protos serialized (``closure``, ``spec`` columns) next to the plain columns
the admin filter language can address, so a read returns exactly what was written and a filter
compares real values. A hard kill loses at most the transaction in flight, never half of one.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import cache
from pathlib import Path

from google.protobuf import duration_pb2, timestamp_pb2

from flyte_bridge.errors import FlyteConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY,
    identifier TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    labels BLOB,
    state INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    project TEXT NOT NULL, domain TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
    closure BLOB NOT NULL,
    digest TEXT NOT NULL,
    type TEXT NOT NULL DEFAULT '',
    short_description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER,
    UNIQUE (project, domain, name, version)
);
CREATE TABLE IF NOT EXISTS workflows (
    id INTEGER PRIMARY KEY,
    project TEXT NOT NULL, domain TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
    typed_interface BLOB,
    remote_closure_identifier TEXT NOT NULL DEFAULT '',
    closure BLOB NOT NULL,
    digest TEXT NOT NULL,
    short_description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER,
    UNIQUE (project, domain, name, version)
);
CREATE TABLE IF NOT EXISTS launch_plans (
    id INTEGER PRIMARY KEY,
    project TEXT NOT NULL, domain TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
    spec BLOB NOT NULL,
    workflow_id INTEGER NOT NULL,
    closure BLOB NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    digest TEXT NOT NULL,
    schedule_type TEXT NOT NULL DEFAULT 'NONE',
    launch_condition_type TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER,
    UNIQUE (project, domain, name, version)
);
CREATE TABLE IF NOT EXISTS named_entity_metadata (
    id INTEGER PRIMARY KEY,
    resource_type INTEGER NOT NULL,
    project TEXT NOT NULL, domain TEXT NOT NULL, name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    state INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER,
    UNIQUE (resource_type, project, domain, name)
);
CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY,
    execution_project TEXT NOT NULL, execution_domain TEXT NOT NULL, execution_name TEXT NOT NULL,
    launch_plan_id INTEGER,
    workflow_id INTEGER,
    task_id INTEGER,
    phase TEXT NOT NULL,
    closure BLOB NOT NULL,
    spec BLOB NOT NULL,
    started_at INTEGER,
    execution_created_at INTEGER NOT NULL,
    execution_updated_at INTEGER NOT NULL,
    duration INTEGER NOT NULL DEFAULT 0,
    abort_cause TEXT NOT NULL DEFAULT '',
    mode INTEGER NOT NULL DEFAULT 0,
    source_execution_id INTEGER,
    parent_node_execution_id INTEGER,
    cluster TEXT NOT NULL DEFAULT '',
    inputs_uri TEXT NOT NULL DEFAULT '',
    user_inputs_uri TEXT NOT NULL DEFAULT '',
    error_kind TEXT,
    error_code TEXT,
    user TEXT NOT NULL DEFAULT '',
    state INTEGER NOT NULL DEFAULT 0,
    launch_entity TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER,
    UNIQUE (execution_project, execution_domain, execution_name)
);
CREATE TABLE IF NOT EXISTS execution_tags (
    execution_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS execution_tags_execution ON execution_tags (execution_id);
CREATE TABLE IF NOT EXISTS node_executions (
    id INTEGER PRIMARY KEY,
    execution_project TEXT NOT NULL, execution_domain TEXT NOT NULL, execution_name TEXT NOT NULL,
    node_id TEXT NOT NULL,
    phase TEXT NOT NULL,
    input_uri TEXT NOT NULL DEFAULT '',
    closure BLOB NOT NULL,
    started_at INTEGER,
    node_execution_created_at INTEGER NOT NULL,
    node_execution_updated_at INTEGER NOT NULL,
    duration INTEGER NOT NULL DEFAULT 0,
    node_execution_metadata BLOB,
    parent_id INTEGER,
    parent_task_execution_id INTEGER,
    error_kind TEXT,
    error_code TEXT,
    cache_status TEXT,
    dynamic_workflow_remote_closure_reference TEXT NOT NULL DEFAULT '',
    internal_data BLOB,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER,
    UNIQUE (execution_project, execution_domain, execution_name, node_id)
);
CREATE INDEX IF NOT EXISTS node_executions_parent ON node_executions (parent_id);
CREATE TABLE IF NOT EXISTS task_executions (
    id INTEGER PRIMARY KEY,
    project TEXT NOT NULL, domain TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
    execution_project TEXT NOT NULL, execution_domain TEXT NOT NULL, execution_name TEXT NOT NULL,
    node_id TEXT NOT NULL,
    retry_attempt INTEGER NOT NULL,
    phase TEXT NOT NULL,
    phase_version INTEGER NOT NULL DEFAULT 0,
    input_uri TEXT NOT NULL DEFAULT '',
    closure BLOB NOT NULL,
    started_at INTEGER,
    task_execution_created_at INTEGER NOT NULL,
    task_execution_updated_at INTEGER NOT NULL,
    duration INTEGER NOT NULL DEFAULT 0,
    node_execution_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER,
    UNIQUE (execution_project, execution_domain, execution_name, node_id, project, domain,
            name, version, retry_attempt)
);
CREATE INDEX IF NOT EXISTS task_executions_node ON task_executions (node_execution_id);
CREATE TABLE IF NOT EXISTS signals (
    id INTEGER PRIMARY KEY,
    execution_project TEXT NOT NULL, execution_domain TEXT NOT NULL, execution_name TEXT NOT NULL,
    signal_id TEXT NOT NULL,
    type BLOB NOT NULL,
    value BLOB,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deleted_at INTEGER,
    UNIQUE (execution_project, execution_domain, execution_name, signal_id)
);
"""


def now_ns() -> int:
    """The current wall-clock time in integer nanoseconds since the epoch."""
    return time.time_ns()


def to_timestamp(ns: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def from_timestamp(ts: timestamp_pb2.Timestamp) -> int:
    return ts.seconds * 1_000_000_000 + ts.nanos


def to_duration(ns: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def from_duration(duration: duration_pb2.Duration) -> int:
    return duration.seconds * 1_000_000_000 + duration.nanos


class SandboxDatabaseError(FlyteConfigError):
    """The data directory's database file is not a sandbox database: corrupt, or another's.

    Attributes:
        path: The database file.
    """

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(
            f"{path} is not a usable sandbox database: {problem}; move it away or use another "
            "data directory",
            subject=str(path),
        )


def _tables(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """Each table of a database (SQLite's own left out) with the names of its columns."""
    names = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
        "ESCAPE '\\'"
    ).fetchall()
    return {
        name: {
            column for (column,) in conn.execute("SELECT name FROM pragma_table_info(?)", (name,))
        }
        for (name,) in names
    }


@cache
def _schema_tables() -> dict[str, set[str]]:
    with closing(sqlite3.connect(":memory:")) as memory:
        memory.executescript(SCHEMA)
        return _tables(memory)


def _schema_problem(conn: sqlite3.Connection) -> str | None:
    """Why the tables already in a database are not the sandbox's, or None if they are."""
    expected = _schema_tables()
    found = _tables(conn)
    foreign = sorted(set(found) - set(expected))
    if foreign:
        return f"it holds tables the sandbox does not use ({', '.join(foreign)})"
    for table, columns in found.items():
        missing = sorted(expected[table] - columns)
        if missing:
            return f"its table {table} lacks the columns {', '.join(missing)}"
    return None


class Database:
    """One SQLite connection shared by the server's threads behind a lock."""

    def __init__(self, path: Path) -> None:
        """Opens (or creates) the database at ``path``.

        Raises:
            SandboxDatabaseError: The file is not an SQLite database, or holds other tables.
        """
        self.path = Path(path)
        self._lock = threading.RLock()
        self._depth = 0
        self._conn = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._conn.row_factory = sqlite3.Row
        try:
            # Read before anything is written: a file that is not ours stays as it was.
            problem = _schema_problem(self._conn)
            if problem is None:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                # flyteadmin runs on Postgres, whose LIKE is case-sensitive.
                self._conn.execute("PRAGMA case_sensitive_like=ON")
                self._conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as err:
            problem = str(err)
        if problem is not None:
            self._conn.close()
            raise SandboxDatabaseError(self.path, problem)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; nested uses join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth = 0

    def query(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple | list = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
