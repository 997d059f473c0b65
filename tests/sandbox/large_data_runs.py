"""A sandbox with small data limits and two finished runs of ``large_data.large_data_wf``.

Shared by the sandbox and the core tests of large data (the ``large_data_runs`` fixture of
``tests/conftest.py``), so that the extra sandbox starts and the runs run once per session. The
limits are small so that the data stays small: Get*Data inlines maps below 64 KiB, and flytekit
offloads task outputs of 1 MiB or more.

- ``url_run`` (size 200,000): no literal is offloaded, but the outputs of ``big_parts``, ``join``
  and the workflow are above the inline limit, so clients must follow the ``UrlBlob`` link.
- ``offloaded_run`` (size 1,200,000): ``big_parts`` and ``join`` return offloaded literals; the
  engine passes the list to ``join`` unread and reads it to resolve ``parts[0]`` and ``parts[1]``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from flyte_examples import register_modules, remote_for, unique_name

INLINE_LIMIT = 64 * 1024
OFFLOADING_MIN_MB = 1
URL_SIZE = 200_000
OFFLOADED_SIZE = 1_200_000
MODULE = "large_data"
VERSION = "large-data-v1"
WORKFLOWS = "tests/sandbox/workflows/large_data.py"


@dataclasses.dataclass
class LargeDataRuns:
    """The small-limit sandbox, a flytekit config for it and the two finished executions."""

    sandbox: Any
    config: Path
    url_run: Any
    offloaded_run: Any

    def remote(self):
        """A fresh flytekit FlyteRemote on this sandbox."""
        return remote_for(self.config)


def expected_text(size: int) -> str:
    """What ``large_data_wf`` returns as its first output for ``size``."""
    return "x" * size + "tail"


def start_large_data_runs(data_dir: Path) -> LargeDataRuns:
    """Starts the sandbox, registers the workflow with pyflyte and runs it to success twice."""
    from flyte_bridge.sandbox.api import start_sandbox

    sandbox = start_sandbox(
        port=0,
        data_dir=data_dir / "data",
        max_inline_data_bytes=INLINE_LIMIT,
        literal_offloading_min_mb=OFFLOADING_MIN_MB,
    )
    try:
        config = sandbox.write_flytekit_config(data_dir / "config.yaml")
        register_modules(config, VERSION, WORKFLOWS)
        remote = remote_for(config)
        launch_plan = remote.fetch_launch_plan(name=f"{MODULE}.large_data_wf", version=VERSION)
        launched = [
            remote.execute(launch_plan, inputs={"size": size}, execution_name=unique_name("big"))
            for size in (URL_SIZE, OFFLOADED_SIZE)
        ]
        finished = [remote.wait(execution, timeout=180) for execution in launched]
        for execution in finished:
            assert execution.closure.phase == 4, f"{execution.id.name}: {execution.error}"
        url_run, offloaded_run = (execution.id.to_flyte_idl() for execution in finished)
    except BaseException:
        sandbox.stop()
        raise
    return LargeDataRuns(sandbox, config, url_run, offloaded_run)
