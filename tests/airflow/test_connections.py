"""The connection as users make it: stored in the metadata database with ``airflow connections
add`` and used by ``airflow dags test`` (the deferred wait looks it up on the event loop), with
the sandbox's console URL, whose links must open."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def airflow(*args: str) -> subprocess.CompletedProcess:
    """``airflow <args>`` in this process's AIRFLOW_HOME, standard output and error kept."""
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    return subprocess.run(
        ["airflow", *args],
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=300,
    )


def answers(url: str) -> int:
    """The HTTP status a GET of ``url`` answers with."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (the sandbox's URL)
        return response.status


@pytest.fixture(scope="module")
def db_connection_run(airflow_db, flyte_sandbox, flyte_examples):
    """``airflow dags test flyte_db_connection`` with ``flyte_in_db`` only in the database."""
    import flyte_test_dags
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    conn_id = flyte_test_dags.DB_CONNECTION
    assert f"AIRFLOW_CONN_{conn_id.upper()}" not in os.environ
    host, port = flyte_sandbox.endpoint.rsplit(":", 1)
    extra = {
        "insecure": True,
        "project": "flytesnacks",
        "domain": "development",
        "console_url": flyte_sandbox.http_url,
    }
    added = airflow(
        "connections", "add", conn_id, "--conn-type", "flyte", "--conn-host", host,
        "--conn-port", port, "--conn-extra", json.dumps(extra),
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr
    done = airflow("dags", "test", "flyte_db_connection")
    output = done.stdout + done.stderr
    with create_session() as session:
        run = session.scalars(select(DagRun).where(DagRun.dag_id == "flyte_db_connection")).one()
        states = {ti.task_id: ti.state for ti in run.get_task_instances(session=session)}
        session.expunge(run)
    return run, states, output, done.returncode


def test_a_deferred_wait_finds_a_connection_stored_in_the_metadata_db(db_connection_run):
    _, states, output, returncode = db_connection_run

    assert returncode == 0, output[-5000:]
    assert "running trigger in line" in output
    assert "isn't defined" not in output
    assert states == {"launch_deferred": "success"}, output[-5000:]


def test_the_console_url_in_xcom_opens_the_execution_on_the_sandbox(
    db_connection_run, xcoms, flyte_sandbox
):
    run, *_ = db_connection_run

    pushed = xcoms(run, "launch_deferred")

    assert pushed["console_url"].startswith(f"{flyte_sandbox.http_url}/console/")
    assert pushed["console_url"].endswith("/executions/" + pushed["execution_id"].split("/")[-1])
    assert answers(pushed["console_url"]) == 200
    assert pushed["_link_FlyteExecutionLink"] == pushed["console_url"]
