"""The "Flyte execution" button on a task: the console URL the task stored in XCom."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink

XCOM_CONSOLE_URL = "console_url"
"""XCom key of the execution's console URL, pushed as soon as the execution is known."""

CONSOLE_URL_ATTRIBUTE = "_flyte_console_url"
"""Operator attribute with the console URL this process pushed: ``""`` when the task ran
``execute`` here and pushed none (yet), None (or missing) when unknown."""


class FlyteExecutionLink(BaseOperatorLink):
    """Opens the task's Flyte execution in the Flyte console.

    The URL is computed on the worker when the run is launched and read back from XCom, because
    the API server that draws the button must not call Flyte. Airflow 3 asks for the link once,
    when the task ends, on the worker, with the operator that ran: a task that pushed no URL (a
    launch that failed, a dry-run backfill) says so through :data:`CONSOLE_URL_ATTRIBUTE`, and
    gets no link without a lookup, since the Task SDK logs a missing XCom at error level.
    """

    name = "Flyte execution"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        known = getattr(operator, CONSOLE_URL_ATTRIBUTE, None)
        if isinstance(known, str):
            return known
        # Another process of this task (the one that deferred) may have pushed it.
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_value(key=XCOM_CONSOLE_URL, ti_key=ti_key) or ""
