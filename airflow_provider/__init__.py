"""Airflow provider for Flyte: launch, wait on, signal, terminate and backfill executions.

Operators, sensors and triggers import cheaply: flyte-bridge's client and its gRPC stubs load only
when a task runs, never when a DAG file is parsed.
"""

from __future__ import annotations

__version__ = "0.1.0"
