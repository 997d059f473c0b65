"""The ``flyte-bridge`` command keeps gRPC core's own log lines off stderr unless asked for them.

Against a plaintext admin without ``--insecure``, gRPC core used to print its
``I1204 07:13:18.123 ... ssl_transport_security.cc:2563] Handshake failed ...`` line ahead of the
command's own error, which already says that admin does not speak TLS.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flyte_bridge.cli import _quiet_grpc_core_logging

CLI = str(Path(sys.executable).parent / "flyte-bridge")

# gRPC core's (absl's) log prefix: severity, MMDD, time, thread id, file.cc:line]
GRPC_CORE_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+\.cc:\d+\]", re.MULTILINE)


def _list_over_tls(endpoint: str, tmp_path: Path, **extra_env: str) -> subprocess.CompletedProcess:
    """``executions list`` against the plaintext sandbox, without --insecure."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLYTE", "GRPC_", "ABSL"))}
    env.update(HOME=str(tmp_path), **extra_env)  # no ~/.flyte config of the user's
    command = [CLI, "executions", "list", "--endpoint", endpoint, "-p", "flytesnacks"]
    command += ["-d", "development"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_a_tls_mismatch_prints_our_error_and_no_grpc_core_log_line(flyte_sandbox, tmp_path):
    result = _list_over_tls(flyte_sandbox.endpoint, tmp_path)

    assert result.returncode == 1, result.stderr
    assert f"admin at {flyte_sandbox.endpoint} does not speak TLS; set insecure" in result.stderr
    assert GRPC_CORE_LINE.search(result.stderr) is None, result.stderr
    assert "Handshake failed" not in result.stderr.split("Error:")[0]


def test_grpc_core_logs_as_the_user_asked_with_grpc_verbosity_set(flyte_sandbox, tmp_path):
    result = _list_over_tls(flyte_sandbox.endpoint, tmp_path, GRPC_VERBOSITY="INFO")

    assert result.returncode == 1, result.stderr
    assert "does not speak TLS" in result.stderr
    assert GRPC_CORE_LINE.search(result.stderr) is not None, result.stderr


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, "ERROR"),
        ({"GRPC_VERBOSITY": "DEBUG"}, "DEBUG"),
        ({"GRPC_TRACE": "handshaker"}, None),
    ],
)
def test_grpc_verbosity_defaults_to_error_unless_the_user_set_it_or_a_trace(given, expected):
    environ = dict(given)

    _quiet_grpc_core_logging(environ)

    assert environ.get("GRPC_VERBOSITY") == expected
