"""Runs the real ``flyte-bridge sandbox start`` for tests of starts that must be refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "flyte-bridge")


def run_sandbox_start(*options: str) -> subprocess.CompletedProcess:
    """Runs ``sandbox start`` without FLYTE_* variables; fails the test if it serves instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLYTE_")}
    try:
        return subprocess.run(
            [CLI, "sandbox", "start", *options],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"the sandbox started and served:\n{timeout.stdout}{timeout.stderr}")
