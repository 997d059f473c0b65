"""Trigger arguments and events at the triggerer/worker boundary, and triggers sharing the
core watcher (one test runs against the sandbox, one against an admin that stops answering)."""

import json
import threading
import time
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_provider.operators.flyte import FlyteLaunchOperator, check_event
from airflow_provider.triggers.flyte import (
    FlyteExecutionTrigger,
    FlyteGateTrigger,
    wait_deadline,
)


@pytest.mark.parametrize(
    "trigger",
    [
        FlyteExecutionTrigger(
            execution_id="flytesnacks/development/a1",
            poll_interval=2,
            wait_started=100.0,
            end_time=160.0,
            execution_deadline=130.0,
            timeout_limit=30,
        ),
        FlyteGateTrigger(
            execution_id="flytesnacks/development/a1", signal_id="review", end_time=9.5
        ),
    ],
)
def test_a_trigger_serializes_to_json_and_rebuilds_itself(trigger):
    classpath, kwargs = trigger.serialize()

    module, name = classpath.rsplit(".", 1)
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)


def test_the_earlier_deadline_wins():
    assert wait_deadline(160.0, 130.0) == 130.0
    assert wait_deadline(None, 130.0) == 130.0
    assert wait_deadline(None, None) is None


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (None, "expected a trigger event payload"),
        ({"status": "bogus", "execution_id": "p/d/n"}, "is not one of"),
        ({"status": "done"}, "without an execution_id"),
    ],
)
def test_a_lost_or_foreign_event_is_refused_with_the_reason(event, message):
    with pytest.raises(AirflowException, match=message):
        check_event(event, ("done", "timeout", "error"))


@pytest.mark.parametrize(("permanent", "retried"), [(True, False), (False, True)])
def test_a_trigger_error_marked_permanent_fails_the_task_without_retries(permanent, retried):
    from airflow.sdk.exceptions import AirflowFailException

    event = {
        "status": "error",
        "execution_id": "p/d/n",
        "message": "FlyteNotFoundError: no execution p/d/n",
        "permanent": permanent,
    }

    with pytest.raises(AirflowException, match="no execution p/d/n") as raised:
        check_event(event, ("done", "timeout", "error"))
    assert isinstance(raised.value, AirflowFailException) is not retried


async def _first_event(trigger):
    async for event in trigger.run():
        return event.payload


def _first_event_closing_watchers(trigger):
    """The trigger's first event, then the clients of the loop's shared watchers closed."""
    import asyncio

    from flyte_bridge.watcher import AsyncExecutionWatcher

    async def run_trigger():
        try:
            return await _first_event(trigger)
        finally:
            shared = AsyncExecutionWatcher._shared.get(asyncio.get_running_loop(), {})
            for watcher in shared.values():
                await watcher.client.close()

    return asyncio.run(run_trigger())


def test_a_trigger_on_a_wrong_connection_marks_its_error_permanent(monkeypatch):
    import asyncio

    monkeypatch.setenv(
        "AIRFLOW_CONN_FLYTE_WRONG_EXTRAS",
        '{"conn_type": "flyte", "host": "127.0.0.1", "port": 9, "extra": {"max_retries": "x"}}',
    )
    trigger = FlyteExecutionTrigger("p/d/n", flyte_conn_id="flyte_wrong_extras")

    payload = asyncio.run(_first_event(trigger))

    assert (payload["status"], payload["permanent"]) == ("error", True)
    assert "extra 'max_retries' must be an integer of 0 or more" in payload["message"]


@pytest.mark.parametrize("trigger_class", [FlyteExecutionTrigger, FlyteGateTrigger])
def test_a_trigger_on_a_connection_that_is_not_defined_marks_its_error_permanent(
    trigger_class, airflow_db
):
    import asyncio

    if trigger_class is FlyteGateTrigger:
        trigger = FlyteGateTrigger("p/d/n", signal_id="review", flyte_conn_id="flyte_nosuch")
    else:
        trigger = FlyteExecutionTrigger("p/d/n", flyte_conn_id="flyte_nosuch")

    payload = asyncio.run(_first_event(trigger))

    assert (payload["status"], payload["permanent"]) == ("error", True)
    assert "FlyteConnectionNotFoundError: Airflow connection 'flyte_nosuch'" in payload["message"]
    assert "AIRFLOW_CONN_FLYTE_NOSUCH" in payload["message"]


def test_a_launch_names_exactly_one_of_launch_plan_or_task():
    with pytest.raises(ValueError, match="exactly one of launch_plan or task"):
        FlyteLaunchOperator(task_id="t", launch_plan="a", task="b")


async def _count_rpcs_while_triggers_wait(execution_ids, ticks, monkeypatch):
    """Runs one trigger per execution in this event loop, as a triggerer does, until the shared
    watcher has ticked ``ticks`` times; returns the watcher's ticks and the RPCs by method."""
    import asyncio
    import collections

    from flyte_bridge.transport import AsyncTransport
    from flyte_bridge.watcher import AsyncExecutionWatcher

    calls = collections.Counter()
    unary = AsyncTransport.unary

    async def counted(self, service, method, request, **kwargs):
        calls[method] += 1
        return await unary(self, service, method, request, **kwargs)

    monkeypatch.setattr(AsyncTransport, "unary", counted)

    async def first_event(trigger):
        async for event in trigger.run():
            return event

    tasks = [
        asyncio.create_task(first_event(FlyteExecutionTrigger(execution_id, poll_interval=0.5)))
        for execution_id in execution_ids
    ]
    watchers = {}
    for _ in range(600):
        watchers = AsyncExecutionWatcher._shared.get(asyncio.get_running_loop(), {})
        if watchers and min(w.ticks for w in watchers.values()) >= ticks:
            break
        await asyncio.sleep(0.1)
    fired = [task for task in tasks if task.done()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert not fired, [task.result() for task in fired]
    return [w.ticks for w in watchers.values()], calls


@pytest.mark.slow
def test_the_deferred_waits_of_one_triggerer_share_one_list_call_a_tick(
    monkeypatch, airflow_db, flyte_connection, flyte_examples, flyte_client
):
    import asyncio

    running = [
        flyte_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 600}) for _ in range(3)
    ]
    try:
        ticks, calls = asyncio.run(
            _count_rpcs_while_triggers_wait([str(e.id) for e in running], 3, monkeypatch)
        )
    finally:
        for execution in running:
            flyte_client.terminate(execution, cause="test finished")

    (watcher_ticks,) = ticks
    assert watcher_ticks >= 3
    assert watcher_ticks <= calls["ListExecutions"] <= watcher_ticks + 1
    assert calls["GetExecution"] == 0


class _GateClient:
    """Answers wait_for_gate with a given error, as the async client would raise it."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def wait_for_gate(self, *args, **kwargs):
        raise self.error


@pytest.mark.parametrize(("grpc_code", "status"), [(None, "timeout"), ("DEADLINE_EXCEEDED", None)])
def test_the_gate_trigger_tells_its_own_timeout_from_an_rpc_deadline(grpc_code, status):
    import asyncio

    from flyte_bridge.errors import FlyteTimeoutError

    trigger = FlyteGateTrigger(execution_id="p/d/n", signal_id="review", end_time=None)
    client = _GateClient(FlyteTimeoutError("out of time", grpc_code=grpc_code))

    if status is None:
        with pytest.raises(FlyteTimeoutError):
            asyncio.run(trigger._wait(client))
    else:
        assert asyncio.run(trigger._wait(client))["status"] == status


def test_a_gate_timeout_without_a_limit_fails_with_a_readable_message():
    from airflow_provider.operators.flyte import FlyteSignalOperator, FlyteWaitTimeout

    operator = FlyteSignalOperator(task_id="gate", execution="p/d/n", signal_id="review")
    event = {"status": "timeout", "execution_id": "p/d/n", "signal_id": "review"}

    with pytest.raises(
        FlyteWaitTimeout, match="did not reach gate review; the signal was not sent$"
    ):
        operator.execute_complete({}, event)


@pytest.fixture
def frozen_admin(monkeypatch):
    """Admin on 127.0.0.1 (connection ``flyte_frozen``: 1 s RPC deadline, 3 transport retries)
    that lists ``flytesnacks/development/frozen`` RUNNING once, then answers nothing more, as
    when the sandbox is SIGSTOPped."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "core"))
    import grpc
    from _transport_fakes import ScriptedServer
    from flyteidl.admin import execution_pb2
    from flyteidl.core import execution_pb2 as core_execution_pb2

    thawed = threading.Event()

    def hang(request, context):
        thawed.wait(30)
        return grpc.StatusCode.UNAVAILABLE

    running = execution_pb2.Execution(
        id={"project": "flytesnacks", "domain": "development", "name": "frozen"},
        closure={"phase": core_execution_pb2.WorkflowExecution.RUNNING},
    )
    server = ScriptedServer(
        defaults={"GetExecution": hang, "ListExecutions": hang, "TerminateExecution": hang}
    )
    server.script("ListExecutions", execution_pb2.ExecutionList(executions=[running]))
    server.start()
    extra = {"insecure": True, "project": "flytesnacks", "domain": "development"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_FLYTE_FROZEN",
        json.dumps(
            {
                "conn_type": "flyte",
                "host": "127.0.0.1",
                "port": server.port,
                "extra": {**extra, "rpc_timeout": 1, "max_retries": 3},
            }
        ),
    )
    try:
        yield server
    finally:
        thawed.set()
        server.stop()


def test_a_deferred_wait_on_an_admin_that_stops_answering_ends_with_its_timeout_event(
    frozen_admin,
):

    from airflow_provider.operators.flyte import FlyteWaitTimeout

    started = time.time()
    trigger = FlyteExecutionTrigger(
        "flytesnacks/development/frozen",
        flyte_conn_id="flyte_frozen",
        poll_interval=0.2,
        wait_started=started,
        end_time=started + 1.5,
        timeout_limit=1.5,
    )

    payload = _first_event_closing_watchers(trigger)

    elapsed = time.time() - started
    # The timeout, the last status read and the terminate call, one RPC deadline (1 s) each.
    assert 1.5 <= elapsed < 1.5 + 1 + 1 + 1.0
    assert {k: payload[k] for k in ("status", "execution_id", "phase", "reason", "limit")} == {
        "status": "timeout",
        "execution_id": "flytesnacks/development/frozen",
        "phase": "RUNNING",
        "reason": "timeout",
        "limit": 1.5,
    }
    assert payload["terminated"] is False  # admin did not answer the terminate call either
    calls = [call.method for call in frozen_admin.calls]
    assert (calls.count("GetExecution"), calls.count("TerminateExecution")) == (1, 1)
    operator = FlyteLaunchOperator(task_id="launch", launch_plan="lp", timeout=1.5)
    with pytest.raises(FlyteWaitTimeout, match="did not end within the timeout of 1.5s"):
        operator.execute_complete({}, payload)


@pytest.fixture
def last_minute_admin(monkeypatch):
    """Admin on 127.0.0.1 (connection ``flyte_last_minute``) that lists
    ``flytesnacks/development/late`` RUNNING and reads it SUCCEEDED: a run that ends between
    the trigger's last tick and its deadline."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "core"))
    from _transport_fakes import ScriptedServer
    from flyteidl.admin import execution_pb2
    from flyteidl.core import execution_pb2 as core_execution_pb2

    def execution(phase: int) -> execution_pb2.Execution:
        return execution_pb2.Execution(
            id={"project": "flytesnacks", "domain": "development", "name": "late"},
            closure={"phase": phase},
        )

    phases = core_execution_pb2.WorkflowExecution
    running = execution_pb2.ExecutionList(executions=[execution(phases.RUNNING)])
    server = ScriptedServer(
        defaults={
            "ListExecutions": lambda request, context: running,
            "GetExecution": lambda request, context: execution(phases.SUCCEEDED),
        }
    )
    server.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_FLYTE_LAST_MINUTE",
        json.dumps(
            {
                "conn_type": "flyte",
                "host": "127.0.0.1",
                "port": server.port,
                "extra": {"insecure": True, "project": "flytesnacks", "domain": "development"},
            }
        ),
    )
    try:
        yield server
    finally:
        server.stop()


def test_c20_a_run_that_ends_just_before_the_deadline_is_a_success_not_a_timeout(
    last_minute_admin,
):

    started = time.time()
    trigger = FlyteExecutionTrigger(
        "flytesnacks/development/late",
        flyte_conn_id="flyte_last_minute",
        poll_interval=30,
        wait_started=started,
        end_time=started + 1.0,
        timeout_limit=1.0,
    )

    payload = _first_event_closing_watchers(trigger)

    assert (payload["status"], payload["phase"]) == ("done", "SUCCEEDED")
    assert last_minute_admin.calls_to("TerminateExecution") == []
    assert len(last_minute_admin.calls_to("GetExecution")) == 1
