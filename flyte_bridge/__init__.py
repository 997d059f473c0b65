"""flyte-bridge: drive and monitor Flyte executions from Airflow and Dagster.

Importing the package is cheap: the names below load their modules (and grpc) on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "FlyteClient": "flyte_bridge.client",
    "AsyncFlyteClient": "flyte_bridge.aio",
    "ClientConfig": "flyte_bridge.config",
    "AuthConfig": "flyte_bridge.config",
    "Secret": "flyte_bridge.config",
    "ExecutionWatcher": "flyte_bridge.watcher",
    "AsyncExecutionWatcher": "flyte_bridge.watcher",
    "ExecutionId": "flyte_bridge.models",
    "NodeExecutionId": "flyte_bridge.models",
    "Execution": "flyte_bridge.models",
    "NodeExecution": "flyte_bridge.models",
    "TaskExecution": "flyte_bridge.models",
    "Signal": "flyte_bridge.models",
    "TerminateResult": "flyte_bridge.models",
    "WorkflowPhase": "flyte_bridge.models",
    "NodePhase": "flyte_bridge.models",
    "TaskPhase": "flyte_bridge.models",
    "Filter": "flyte_bridge.filters",
    "Sort": "flyte_bridge.filters",
}

__all__ = [
    "__version__",
    "FlyteClient",
    "AsyncFlyteClient",
    "ClientConfig",
    "AuthConfig",
    "Secret",
    "ExecutionWatcher",
    "AsyncExecutionWatcher",
    "ExecutionId",
    "NodeExecutionId",
    "Execution",
    "NodeExecution",
    "TaskExecution",
    "Signal",
    "TerminateResult",
    "WorkflowPhase",
    "NodePhase",
    "TaskPhase",
    "Filter",
    "Sort",
]

if TYPE_CHECKING:
    from flyte_bridge.aio import AsyncFlyteClient
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import AuthConfig, ClientConfig, Secret
    from flyte_bridge.filters import Filter, Sort
    from flyte_bridge.models import (
        Execution,
        ExecutionId,
        NodeExecution,
        NodeExecutionId,
        NodePhase,
        Signal,
        TaskExecution,
        TaskPhase,
        TerminateResult,
        WorkflowPhase,
    )
    from flyte_bridge.watcher import AsyncExecutionWatcher, ExecutionWatcher


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'flyte_bridge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
