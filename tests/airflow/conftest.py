"""Airflow test fixtures: a private AIRFLOW_HOME with SQLite per test process and the sandbox's
connection (the Flyte examples are registered by ``flyte_examples`` of tests/conftest.py).

Airflow reads AIRFLOW_HOME when it is first imported, so this module sets it at import time,
before any test module imports ``airflow``; each xdist worker is its own process and gets its own
home and database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "examples" / "airflow" / "dags"
TEST_DAGS = Path(__file__).resolve().parent / "dags"

if "airflow" in sys.modules:
    raise RuntimeError("airflow was imported before tests/airflow/conftest.py set AIRFLOW_HOME")

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="flyte-bridge-airflow-home-"))
DAGS_FOLDER = AIRFLOW_HOME / "dags"
DAGS_FOLDER.mkdir()
for dag_file in [*EXAMPLE_DAGS.glob("*.py"), *TEST_DAGS.glob("*.py")]:
    (DAGS_FOLDER / dag_file.name).symlink_to(dag_file)
sys.path.insert(0, str(DAGS_FOLDER))
os.environ.update(
    AIRFLOW_HOME=str(AIRFLOW_HOME),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_FOLDER),
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
)


@pytest.fixture
def airflow_cli(airflow_db):
    """Runs ``airflow <args>`` in this process's AIRFLOW_HOME and returns its standard output."""

    def run(*args: str) -> str:
        path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
        env = {**os.environ, "PATH": path}
        done = subprocess.run(
            ["airflow", *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    return run


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database in this process's AIRFLOW_HOME."""
    from airflow.utils.db import initdb

    initdb()
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def flyte_connection(flyte_sandbox) -> str:
    """``flyte_default`` points at the session's sandbox (through the environment), with the
    sandbox's console URL (its HTTP endpoint) for the links."""
    host, port = flyte_sandbox.endpoint.rsplit(":", 1)
    os.environ["AIRFLOW_CONN_FLYTE_DEFAULT"] = json.dumps(
        {
            "conn_type": "flyte",
            "host": host,
            "port": int(port),
            "extra": {
                "insecure": True,
                "project": "flytesnacks",
                "domain": "development",
                "console_url": flyte_sandbox.http_url,
            },
        }
    )
    return "flyte_default"


@pytest.fixture(scope="session")
def xcoms(airflow_db):
    """Reads the XComs a task of a ``dag.test()`` run pushed, by key, from the metadata DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    def read(run, task_id: str) -> dict:
        with create_session() as session:
            rows = session.scalars(
                XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id)
            ).all()
            return {row.key: XComModel.deserialize_value(row) for row in rows}

    return read


@pytest.fixture
def flyte_client(flyte_sandbox):
    """A sync flyte-bridge client on the sandbox, for checking what the tasks did; its console
    URLs are those of ``flyte_connection``."""
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig

    config = ClientConfig.for_sandbox(
        flyte_sandbox.endpoint, console_endpoint=flyte_sandbox.http_url
    )
    with FlyteClient(config) as client:
        yield client
