"""The "Flyte execution" button on a task: the console URL the task stored in XCom."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink

XCOM_CONSOLE_URL = "console_url"
"""XCom key of the execution's console URL, pushed as soon as the execution is known."""


class FlyteExecutionLink(BaseOperatorLink):
    """Opens the task's Flyte execution in the Flyte console.

    The URL is computed on the worker when the run is launched and read back from XCom, because
    the API server that draws the button must not call Flyte.
    """

    name = "Flyte execution"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_value(key=XCOM_CONSOLE_URL, ti_key=ti_key) or ""
