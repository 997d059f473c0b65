"""A token command that hangs is bounded by the call's deadline, and killed when it runs over."""

from __future__ import annotations

import os
import time

import pytest

from flyte_bridge.client import FlyteClient
from flyte_bridge.config import AuthConfig, ClientConfig
from flyte_bridge.errors import FlyteAuthError


def test_a_hanging_token_command_is_bounded_by_the_wait_and_killed(flyte_sandbox, tmp_path):
    pid_file = tmp_path / "pid"
    command = ("/bin/sh", "-c", f'echo $$ > "{pid_file}"; exec /bin/sleep 100')
    config = ClientConfig.for_sandbox(
        flyte_sandbox.endpoint,
        rpc_timeout=5,
        max_retries=1,
        auth=AuthConfig(mode="external_command", command=command, allow_plaintext=True),
    )
    started = time.monotonic()

    with FlyteClient(config) as client, pytest.raises(FlyteAuthError) as caught:
        client.wait("whatever", timeout=3)

    assert time.monotonic() - started < 5 + 1.5
    assert "did not finish within" in str(caught.value)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
