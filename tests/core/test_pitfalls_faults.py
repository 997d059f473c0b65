"""Pitfalls under the sandbox's fault injection: C05 (a server that stops answering, or drops
the connection) and C27 (UNAVAILABLE from the ingress, also after admin created the execution)."""

from __future__ import annotations

import concurrent.futures
import time

import pytest

from flyte_bridge.config import ClientConfig
from flyte_bridge.errors import FlyteNotFoundError, FlyteTimeoutError, FlyteTransientError
from flyte_bridge.filters import Filter


@pytest.fixture
def short_deadline_client(make_client, flyte_sandbox, registered_examples):
    """A client with a 2 s RPC deadline and quick retries."""
    return make_client(
        ClientConfig.for_sandbox(
            flyte_sandbox.endpoint, rpc_timeout=2.0, retry_initial_backoff=0.05
        )
    )


def test_c05_wait_on_a_black_holed_server_ends_within_timeout_plus_one_deadline(
    short_deadline_client, sandbox_client, flyte_sandbox
):
    running = sandbox_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 60})
    started = time.monotonic()
    try:
        with (
            flyte_sandbox.faults.injected(black_hole=True, methods=["GetExecution"]),
            pytest.raises(FlyteTimeoutError) as caught,
        ):
            short_deadline_client.wait(running, timeout=3.0, poll_interval=0.5)
    finally:
        sandbox_client.terminate(running, "test finished")

    assert time.monotonic() - started < 3.0 + 2.0 + 1.5
    assert str(running.id) in str(caught.value)


def test_c05_wait_reconnects_after_dropped_connections_and_completes(
    short_deadline_client, sandbox_client, flyte_sandbox
):
    running = sandbox_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 1})
    drops_before = flyte_sandbox.faults.injected_counts["drop"]

    with flyte_sandbox.faults.injected(drop_next=2, methods=["GetExecution"]):
        finished = short_deadline_client.wait(running, timeout=120, poll_interval=0.3)

    assert finished.phase.name == "SUCCEEDED"
    assert flyte_sandbox.faults.injected_counts["drop"] - drops_before == 2


def test_c27_reads_are_retried_through_transient_unavailable(
    short_deadline_client, finished_runs, flyte_sandbox
):
    before = flyte_sandbox.rpc_counts.snapshot()

    with flyte_sandbox.faults.injected(fail_next=2, methods=["GetExecution"]):
        fetched = short_deadline_client.fetch_execution(finished_runs["hello"].id)

    assert fetched.is_successful
    assert flyte_sandbox.rpc_counts.since(before).get("GetExecution") == 3


def test_c27_a_create_answered_unavailable_after_it_ran_leaves_exactly_one_execution(
    short_deadline_client, flyte_sandbox
):
    of_hello = Filter.eq("launch_plan.name", "hello.hello_wf")
    existing = {e.id for e in short_deadline_client.list_executions(filters=of_hello)}
    before = flyte_sandbox.rpc_counts.snapshot()

    with flyte_sandbox.faults.injected(
        fail_next=1, fail_after_handling=True, methods=["CreateExecution"]
    ):
        launched = short_deadline_client.launch("hello.hello_wf", inputs={"name": "c27"})

    new = {e.id for e in short_deadline_client.list_executions(filters=of_hello)} - existing
    assert new == {launched.id}
    assert flyte_sandbox.rpc_counts.since(before)["CreateExecution"] == 2


def test_a_create_whose_answer_comes_too_late_is_sent_again_and_makes_one_run(
    make_client, flyte_sandbox, sandbox_client, registered_examples
):
    client = make_client(
        ClientConfig.for_sandbox(
            flyte_sandbox.endpoint, rpc_timeout=1.0, max_retries=3, retry_initial_backoff=0.3
        )
    )
    name = f"late-{time.monotonic_ns() % 10**9}"
    before = flyte_sandbox.rpc_counts.snapshot()
    held = flyte_sandbox.faults.injected_counts["latency"]
    # The first attempt is held past its deadline (admin creates the run after the client gave
    # up on it); the fault is lifted as soon as it holds that attempt, so the retry is answered.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with flyte_sandbox.faults.injected(latency=2.0, methods=["CreateExecution"]):
            first = pool.submit(client.launch, "hello.hello_wf", inputs={"name": "late"}, name=name)
            _wait_until(lambda: flyte_sandbox.faults.injected_counts["latency"] > held)
        launched = first.result(timeout=30)

    assert launched.id.name == name
    assert flyte_sandbox.rpc_counts.since(before).get("CreateExecution") == 2, "sent again"
    finished = sandbox_client.wait(launched, timeout=120, poll_interval=0.3)
    assert finished.phase.name == "SUCCEEDED"


def _wait_until(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_a_create_that_never_gets_an_answer_names_the_run_it_may_have_made(
    make_client, flyte_sandbox, sandbox_client, registered_examples
):
    client = make_client(
        ClientConfig.for_sandbox(
            flyte_sandbox.endpoint, rpc_timeout=0.5, max_retries=1, retry_initial_backoff=0.05
        )
    )
    with (
        flyte_sandbox.faults.injected(latency=1.5, methods=["CreateExecution"]),
        pytest.raises(FlyteTimeoutError) as caught,
    ):
        client.launch("hello.hello_wf", inputs={"name": "unanswered"})

    name = caught.value.subject.rsplit("/", 1)[-1]
    assert f"launch again with name={name!r}" in caught.value.message

    def made_it() -> bool:
        try:
            return sandbox_client.fetch_execution(name) is not None
        except FlyteNotFoundError:
            return False

    _wait_until(made_it)  # the held attempts are handled after the client gave up on them
    made = sandbox_client.fetch_execution(name)
    again = client.launch("hello.hello_wf", inputs={"name": "unanswered"}, name=name)
    assert again.id == made.id


def test_a_terminate_with_a_timeout_ends_within_it_when_admin_stops_answering(
    short_deadline_client, sandbox_client, flyte_sandbox
):
    running = sandbox_client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 60})
    try:
        started = time.monotonic()
        with (
            flyte_sandbox.faults.injected(black_hole=True, methods=["TerminateExecution"]),
            pytest.raises(FlyteTimeoutError),
        ):
            short_deadline_client.terminate(running, "cleanup", timeout=1.0)
        elapsed = time.monotonic() - started

        result = short_deadline_client.terminate(running, "cleanup", timeout=5.0)
    finally:
        sandbox_client.terminate(running, "test finished")

    assert elapsed < 1.0 + 1.0, "one attempt, cut to the timeout, not rpc_timeout x retries"
    # The held first call is handled once the black hole lifts, so either call may be the one
    # that ended the run.
    assert result.phase.name in ("ABORTING", "ABORTED")


@pytest.fixture
def one_retry_client(make_client, flyte_sandbox, registered_examples):
    """A client that tries each call twice, so two injected failures make it give up."""
    return make_client(
        ClientConfig.for_sandbox(
            flyte_sandbox.endpoint, rpc_timeout=2.0, max_retries=1, retry_initial_backoff=0.05
        )
    )


def test_c27_a_launch_whose_read_back_fails_says_the_run_was_created(
    one_retry_client, flyte_sandbox
):
    client = one_retry_client
    of_hello = Filter.eq("launch_plan.name", "hello.hello_wf")
    existing = {e.id for e in client.list_executions(filters=of_hello)}

    with (
        flyte_sandbox.faults.injected(fail_next=2, methods=["GetExecution"]),
        pytest.raises(FlyteTransientError) as caught,
    ):
        client.launch("hello.hello_wf", inputs={"name": "read-back"})

    name = caught.value.subject.rsplit("/", 1)[-1]
    assert "was created, but reading it back failed" in caught.value.message
    assert f"launch again with name={name!r}" in caught.value.message
    again = client.launch("hello.hello_wf", inputs={"name": "read-back"}, name=name)
    new = {e.id for e in client.list_executions(filters=of_hello)} - existing
    assert new == {again.id}, "following the named run launched no second one"


def test_c27_a_relaunch_whose_read_back_fails_names_the_new_run(
    one_retry_client, flyte_sandbox, finished_runs
):
    client = one_retry_client
    with (
        flyte_sandbox.faults.injected(fail_next=2, methods=["GetExecution"]),
        pytest.raises(FlyteTransientError) as caught,
    ):
        client.relaunch(finished_runs["hello"])

    name = caught.value.subject.rsplit("/", 1)[-1]
    assert f"call it again with name={name!r}" in caught.value.message
    assert client.fetch_execution(name).mode == "RELAUNCH"
