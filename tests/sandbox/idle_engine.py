"""An engine that runs nothing, for sandboxes whose tests only look at the gRPC layer."""

from __future__ import annotations


class IdleEngine:
    """Accepts every engine call and does nothing: executions stay where admin put them."""

    def start(self, execution_id, closure, inputs, spec) -> None:
        pass

    def abort(self, execution_id, cause: str) -> None:
        pass

    def notify_signal_set(self, signal_id) -> None:
        pass

    def notify_execution_done(self, execution_id) -> None:
        pass

    def shutdown(self, timeout: float = 10.0) -> None:
        pass
