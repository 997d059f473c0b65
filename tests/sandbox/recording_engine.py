"""An engine that runs nothing and records the calls admin makes, for event-level tests."""

from __future__ import annotations


class RecordingEngine:
    """An engine that runs nothing and remembers what the admin side asked of it.

    Tests of the admin side use it to play propeller themselves: they send the events over
    gRPC (CreateWorkflowEvent, CreateNodeEvent, CreateTaskEvent) and read back what clients see.
    """

    def __init__(self) -> None:
        self.started: list = []
        self.aborted: list = []
        self.signals: list = []
        self.done: list = []

    def start(self, execution_id, closure, inputs, spec) -> None:
        self.started.append((execution_id, closure, inputs, spec))

    def abort(self, execution_id, cause: str) -> None:
        self.aborted.append((execution_id, cause))

    def notify_signal_set(self, signal_id) -> None:
        self.signals.append(signal_id)

    def notify_execution_done(self, execution_id) -> None:
        self.done.append(execution_id)

    def shutdown(self, timeout: float = 10.0) -> None:
        pass
