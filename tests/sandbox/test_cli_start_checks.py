"""``flyte-bridge sandbox start`` refuses bad options and taken ports with one line, no traceback.

The option checks run through click's runner with ``start_sandbox`` replaced, so that an option
let through fails the test at once instead of starting a sandbox that serves forever. Taken
ports are tried with the real command in a subprocess, against a port something listens on.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from cli_runs import run_sandbox_start
from click.testing import CliRunner

from flyte_bridge.sandbox import cli
from flyte_bridge.sandbox.faults import FaultSettings
from flyte_bridge.sandbox.services import served_methods


class _Started(Exception):
    """Raised by the stand-in for ``start_sandbox``: the options got through."""


@pytest.fixture
def run(monkeypatch, tmp_path):
    """Runs ``sandbox start`` with the given options; ``run.started`` holds start's arguments."""
    started: list[dict] = []

    def fake_start_sandbox(**kwargs):
        started.append(kwargs)
        raise _Started

    monkeypatch.setattr(cli, "start_sandbox", fake_start_sandbox)

    def invoke(*options: str):
        args = ["start", "--data-dir", str(tmp_path / "data"), *options]
        return CliRunner().invoke(cli.sandbox, args)

    invoke.started = started
    return invoke


@pytest.fixture
def pem_pair(tmp_path):
    from flyte_bridge.sandbox.tls import generate_self_signed

    return generate_self_signed(tmp_path / "tls")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--port", "70000"], "'--port': 70000 is not in the range 0<=x<=65535"),
        (["--port", "-1"], "'--port': -1 is not in the range 0<=x<=65535"),
        (["--http-port", "65536"], "'--http-port': 65536 is not in the range 0<=x<=65535"),
        (["--http-port", "-5"], "'--http-port': -5 is not in the range"),
        (["--port", "40000", "--http-port", "40000"], "--port and --http-port are both 40000"),
        (["--fault-failure-rate", "1.5"], "'--fault-failure-rate': 1.5 is not in the range"),
        (["--fault-drop-rate", "-0.1"], "'--fault-drop-rate': -0.1 is not in the range"),
        (["--fault-latency", "-1"], "--fault-latency must be seconds, at least 0"),
        (["--fault-latency", "inf"], "latency must be seconds"),
        (["--fault-latency", "0.2-0.1"], "low above high"),
        (
            ["--auth-client-secret", "s", "--auth-token-lifetime", "-5"],
            "'--auth-token-lifetime': -5.0 is not in the range x>0",
        ),
        (
            ["--auth-client-secret", "s", "--auth-token-lifetime", "inf"],
            "token_lifetime must be a positive, finite number",
        ),
        (["--auth-header", "flyte-authorization"], "auth header given without one"),
        (["--fault-methods", "GetExecution"], "--fault-methods only says where faults apply"),
        (
            ["--fault-failure-rate", "0.5", "--fault-methods", "NoSuchMethod"],
            "the sandbox serves no method 'NoSuchMethod'",
        ),
    ],
)
def test_bad_options_are_usage_errors(run, options, message):
    result = run(*options)

    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert run.started == []


def test_an_unknown_fault_method_is_refused_listing_the_served_ones(run):
    result = run("--fault-failure-rate", "0.5", "--fault-methods", "GetExecution,GetExecutoin")

    assert result.exit_code == 2
    assert "'GetExecutoin' (did you mean 'GetExecution'?)" in result.output
    assert all(method in result.output for method in ("ListExecutions", "SetSignal", "UserInfo"))


def test_fault_methods_of_every_served_service_are_accepted(run):
    methods = ["GetExecution", "SetSignal", "CreateUploadLocation", "UserInfo", "GetOAuth2Metadata"]

    result = run("--fault-failure-rate", "0.5", "--fault-methods", ",".join(methods))

    assert isinstance(result.exception, _Started), result.output
    assert run.started[0]["faults"] == FaultSettings(failure_rate=0.5, methods=methods)
    assert set(methods) <= served_methods()


def test_ports_at_both_ends_of_the_range_are_accepted(run):
    result = run("--port", "65535", "--http-port", "0")

    assert isinstance(result.exception, _Started), result.output
    assert (run.started[0]["port"], run.started[0]["http_port"]) == (65535, 0)


@pytest.mark.parametrize("given", ["--tls-cert", "--tls-key"])
def test_a_tls_certificate_or_key_alone_is_a_usage_error(run, pem_pair, given):
    missing = {"--tls-cert": "--tls-key", "--tls-key": "--tls-cert"}[given]
    path = pem_pair.cert_path if given == "--tls-cert" else pem_pair.key_path

    result = run(given, str(path))

    assert result.exit_code == 2
    assert f"{given} needs {missing}" in result.output
    assert run.started == []


def test_tls_files_that_are_not_a_pem_pair_are_a_usage_error(run, pem_pair, tmp_path):
    other = tmp_path / "not-a-key.pem"
    other.write_text("not a key\n")

    result = run("--tls-cert", str(pem_pair.cert_path), "--tls-key", str(other))

    assert result.exit_code == 2
    assert "are not a usable PEM pair" in result.output
    assert run.started == []


@pytest.fixture
def taken_port():
    """A port on 127.0.0.1 that something else listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.mark.parametrize("option", ["--port", "--http-port"])
def test_a_port_in_use_is_a_one_line_error_naming_it_and_leaves_no_data_dir(
    tmp_path, taken_port, option
):
    data_dir = tmp_path / "x" / "new"

    result = run_sandbox_start("--data-dir", str(data_dir), "--port", "0", option, str(taken_port))

    purpose = "gRPC" if option == "--port" else "HTTP"
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: {purpose} port 127.0.0.1:{taken_port} is not available (Address already in "
        "use); choose another port, or 0 for a free one"
    ]
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # neither the data directory nor its parent


@pytest.mark.parametrize("below", ["sub", "sub/deeper"])
def test_a_data_dir_below_a_file_is_a_usage_error_naming_the_file(run, tmp_path, below):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a directory")
    data_dir = in_the_way / below

    result = run("--data-dir", str(data_dir))

    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[-1] == (
        f"Error: Invalid value for '--data-dir': Directory '{data_dir}' cannot be created: "
        f"'{in_the_way}' is a file."
    )
    assert "Traceback" not in result.output
    assert run.started == []


@pytest.mark.skipif(not Path("/proc/1").is_dir(), reason="needs Linux's /proc")
def test_a_data_dir_its_parent_refuses_is_a_one_line_usage_error():
    # /proc/1 is a directory that takes no new entries, for root too.
    result = run_sandbox_start("--port", "0", "--data-dir", "/proc/1/nope/sub")

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--data-dir': Directory '/proc/1/nope/sub' cannot be created "
        "as its parent '/proc/1/nope' cannot be: No such file or directory."
    )
    assert result.stdout == ""


def test_an_os_error_of_another_path_is_not_blamed_on_the_data_dir(monkeypatch, tmp_path):
    def fake_start_sandbox(**kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "elsewhere"))

    monkeypatch.setattr(cli, "start_sandbox", fake_start_sandbox)

    result = CliRunner().invoke(cli.sandbox, ["start", "--data-dir", str(tmp_path / "data")])

    assert isinstance(result.exception, PermissionError)
    assert "--data-dir" not in result.output


def test_a_corrupt_database_file_is_a_one_line_error_naming_it(tmp_path):
    database = tmp_path / "sandbox.db"
    database.write_bytes(os.urandom(5000))

    result = run_sandbox_start("--port", "0", "--data-dir", str(tmp_path))

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: {database} is not a usable sandbox database: file is not a database; move it "
        "away or use another data directory"
    ]
    assert result.stdout == ""
