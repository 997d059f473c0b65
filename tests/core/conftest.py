"""Fixtures of the core client tests.

``client`` runs every test twice, once with :class:`FlyteClient` and once with
:class:`AsyncFlyteClient` (driven on a private event loop), against the session's sandbox: the
test calls ``client.fetch_execution(...)`` the same way for both.

``scripted_admin`` is a tiny AdminService on 127.0.0.1 for the faults the sandbox cannot produce
yet (a server that stops answering, a phase the client does not know, a run stuck in ABORTING).
It answers GetExecution from a script, ListExecutions from its table and counts every call;
``stop_answering()`` freezes it as a SIGSTOPped admin would be, ``answer_again()`` thaws it.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from flyteidl.admin import execution_pb2 as admin_execution_pb2
from flyteidl.core import execution_pb2, identifier_pb2
from flyteidl.service import admin_pb2

from flyte_bridge.aio import AsyncFlyteClient
from flyte_bridge.client import FlyteClient
from flyte_bridge.config import ClientConfig

PROJECT, DOMAIN = "flytesnacks", "development"


class DualClient:
    """One client API for tests: a FlyteClient, or an AsyncFlyteClient run to completion."""

    def __init__(self, kind: str, config: ClientConfig) -> None:
        self.kind = kind
        self.config = config
        if kind == "sync":
            self.inner: Any = FlyteClient(config)
            self.loop = None
        else:
            self.loop = asyncio.new_event_loop()
            self.inner = AsyncFlyteClient(config)

    def run(self, value: Any) -> Any:
        """Awaits ``value`` on the private loop if it is awaitable."""
        if self.loop is not None and inspect.isawaitable(value):
            return self.loop.run_until_complete(value)
        return value

    def __getattr__(self, name: str) -> Callable[..., Any]:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if self.loop is not None and inspect.isasyncgen(result):
                return self.loop.run_until_complete(_collect(result))
            return self.run(result)

        return call

    def close(self) -> None:
        self.run(self.inner.close())
        if self.loop is not None:
            self.loop.close()


async def _collect(generator: Any) -> list[Any]:
    return [item async for item in generator]


@pytest.fixture(params=["sync", "async"])
def client_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def sandbox_config(flyte_sandbox: Any) -> ClientConfig:
    return ClientConfig.for_sandbox(flyte_sandbox.endpoint, rpc_timeout=10.0)


@pytest.fixture
def make_client(client_kind: str) -> Iterator[Callable[[ClientConfig], DualClient]]:
    """Makes clients of this test's kind for other configs; closes them after the test."""
    made: list[DualClient] = []

    def make(config: ClientConfig) -> DualClient:
        made.append(DualClient(client_kind, config))
        return made[-1]

    yield make
    for dual in made:
        dual.close()


@pytest.fixture
def client(make_client: Callable[[ClientConfig], DualClient], sandbox_config: ClientConfig):
    return make_client(sandbox_config)


# A scripted AdminService ------------------------------------------------------------------


def execution_proto(name: str, phase: int, **closure: Any) -> admin_execution_pb2.Execution:
    """An admin Execution in ``phase`` (an int: unknown values are allowed)."""
    pb = admin_execution_pb2.Execution(
        id=identifier_pb2.WorkflowExecutionIdentifier(project=PROJECT, domain=DOMAIN, name=name)
    )
    pb.closure.phase = phase
    for key, value in closure.items():
        getattr(pb.closure, key).CopyFrom(value)
    return pb


class ScriptedAdmin:
    """GetExecution answers from ``script[name]`` (one phase per call, the last repeated);
    the entry ``HANG`` makes the server stop answering; ``calls`` counts every method."""

    HANG = "hang"

    def __init__(self) -> None:
        self.script: dict[str, list[Any]] = {}
        self.calls: Counter[str] = Counter()
        self.list_requests: list[Any] = []
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._answers_left: int | None = None
        self._thawed = threading.Event()

    def stop_answering(self, after: int = 0) -> None:
        """Answers ``after`` more calls (of any method), then none: each later call hangs (until
        :meth:`answer_again` or the end of the test) as on a frozen server."""
        with self._lock:
            self._answers_left = after
            self._thawed = threading.Event()

    def answer_again(self) -> None:
        """Ends :meth:`stop_answering`: the hung calls fail UNAVAILABLE, later ones are answered."""
        with self._lock:
            self._answers_left = None
            self._thawed.set()

    def _hang_if_stopped(self, context: grpc.ServicerContext) -> None:
        with self._lock:
            if self._answers_left is None:
                return
            if self._answers_left > 0:
                self._answers_left -= 1
                return
            thawed = self._thawed
        while not (thawed.is_set() or self.released.is_set()):
            thawed.wait(0.1)
        context.abort(grpc.StatusCode.UNAVAILABLE, "stopped answering")

    def _next(self, name: str) -> Any:
        with self._lock:
            steps = self.script[name]
            return steps.pop(0) if len(steps) > 1 else steps[0]

    def GetExecution(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls["GetExecution"] += 1
        self._hang_if_stopped(context)
        if request.id.name not in self.script:
            context.abort(grpc.StatusCode.NOT_FOUND, f"execution {request.id.name} not found")
        step = self._next(request.id.name)
        if step == self.HANG:
            self.released.wait(60)
            context.abort(grpc.StatusCode.UNAVAILABLE, "released")
        return execution_proto(request.id.name, step)

    def ListExecutions(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls["ListExecutions"] += 1
        self.list_requests.append(request)
        self._hang_if_stopped(context)
        names = request.filters.split("(execution_name,", 1)[1].rstrip(")").split(";")
        with self._lock:
            found = [
                execution_proto(name, self.script[name][0])
                for name in names
                if name in self.script and self.script[name][0] != self.HANG
            ]
            for name in names:
                if name in self.script and len(self.script[name]) > 1:
                    self.script[name].pop(0)
        return admin_execution_pb2.ExecutionList(executions=found)

    def TerminateExecution(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls["TerminateExecution"] += 1
        self._hang_if_stopped(context)
        with self._lock:
            self.script[request.id.name] = [execution_pb2.WorkflowExecution.ABORTING]
        return admin_execution_pb2.ExecutionTerminateResponse()


def _handlers(servicer: ScriptedAdmin) -> grpc.GenericRpcHandler:
    service = admin_pb2.DESCRIPTOR.services_by_name["AdminService"]
    from google.protobuf import message_factory

    handlers = {}
    for method in service.methods:
        implementation = getattr(servicer, method.name, None)
        if implementation is None:
            continue
        request_class = message_factory.GetMessageClass(method.input_type)
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            implementation,
            request_deserializer=request_class.FromString,
            response_serializer=lambda message: message.SerializeToString(),
        )
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


@pytest.fixture
def scripted_admin() -> Iterator[tuple[ScriptedAdmin, ClientConfig]]:
    """A scripted AdminService on 127.0.0.1 and a config pointing at it (2 s RPC deadline)."""
    servicer = ScriptedAdmin()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((_handlers(servicer),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    config = ClientConfig.for_sandbox(f"127.0.0.1:{port}", rpc_timeout=2.0, max_retries=2)
    try:
        yield servicer, config
    finally:
        servicer.released.set()
        server.stop(grace=0)


@pytest.fixture
def scripted_client(
    client_kind: str, scripted_admin: tuple[ScriptedAdmin, ClientConfig]
) -> Iterator[tuple[ScriptedAdmin, DualClient]]:
    servicer, config = scripted_admin
    dual = DualClient(client_kind, config)
    try:
        yield servicer, dual
    finally:
        dual.close()


# The example workflows ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def registered_examples(flyte_examples: str) -> str:
    """The version of ``examples/flyte``, which ``flyte_examples`` (tests/conftest.py) registers
    once per session; launch plans are named ``<module>.<name>`` (``hello.hello_wf``)."""
    return flyte_examples


@pytest.fixture(scope="session")
def sandbox_client(flyte_sandbox: Any, registered_examples: str) -> Iterator[FlyteClient]:
    """A sync client for session-wide setup (launching the executions tests read)."""
    with FlyteClient(ClientConfig.for_sandbox(flyte_sandbox.endpoint, rpc_timeout=10.0)) as c:
        yield c


@pytest.fixture(scope="session")
def finished_runs(sandbox_client: FlyteClient) -> dict[str, Any]:
    """Executions launched once per session and waited on: ``hello`` (SUCCEEDED with input
    name="core"), ``failing`` (FAILED), ``retry`` (SUCCEEDED after one retry) and ``ping``
    (SUCCEEDED, no inputs and no outputs)."""
    launched = {
        "hello": sandbox_client.launch("hello.hello_wf", inputs={"name": "core"}),
        "failing": sandbox_client.launch("failures.failing_wf"),
        "retry": sandbox_client.launch("failures.retry_wf"),
        "ping": sandbox_client.launch("hello.ping_wf"),
    }
    finished = sandbox_client.watcher().wait(
        [e.id for e in launched.values()], timeout=120, poll_interval=0.3
    )
    return {key: finished[execution.id] for key, execution in launched.items()}
