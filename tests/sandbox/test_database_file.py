"""A data directory whose sandbox.db is not the sandbox's (corrupt, or another program's) fails
the start with one typed error naming the file, and the file is left as it was."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from idle_engine import IdleEngine

from flyte_bridge.errors import FlyteConfigError
from flyte_bridge.sandbox import start_sandbox
from flyte_bridge.sandbox.db import SandboxDatabaseError


def _sqlite_file(path: Path, *statements: str) -> None:
    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


def _corrupt(path: Path) -> None:
    path.write_bytes(os.urandom(5000))


def _foreign(path: Path) -> None:
    _sqlite_file(path, "CREATE TABLE photos (id INTEGER, taken TEXT)")


def _same_table_names(path: Path) -> None:
    _sqlite_file(path, "CREATE TABLE projects (slug TEXT)")


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_corrupt, "file is not a database"),
        (_foreign, "it holds tables the sandbox does not use (photos)"),
        (_same_table_names, "its table projects lacks the columns created_at"),
    ],
    ids=["random-bytes", "other-tables", "other-columns"],
)
def test_a_database_file_not_the_sandboxs_is_a_typed_error_and_stays_as_it_was(
    tmp_path, make, problem
):
    database = tmp_path / "sandbox.db"
    make(database)
    before = database.read_bytes()

    with pytest.raises(SandboxDatabaseError) as raised:
        start_sandbox(port=0, data_dir=tmp_path, engine=IdleEngine())

    assert isinstance(raised.value, FlyteConfigError)
    assert raised.value.path == database
    assert str(raised.value).startswith(f"{database} is not a usable sandbox database: {problem}")
    assert str(raised.value).endswith("; move it away or use another data directory")
    assert database.read_bytes() == before
    with pytest.raises(SandboxDatabaseError):  # not DataDirInUseError: the lock was let go
        start_sandbox(port=0, data_dir=tmp_path, engine=IdleEngine())
