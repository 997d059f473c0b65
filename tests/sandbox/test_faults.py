"""Fault injection and call counting: each fault mode as a client over real gRPC sees it."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from flyteidl.admin import project_pb2, version_pb2
from flyteidl.service import admin_pb2_grpc
from idle_engine import IdleEngine

from flyte_bridge.errors import FlyteConfigError
from flyte_bridge.sandbox.faults import FaultSettings

VERSION = version_pb2.GetVersionRequest()
DOMAINS = project_pb2.GetDomainRequest()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A sandbox of its own, so faults can never reach another module's calls."""
    from flyte_bridge.sandbox import start_sandbox

    running = start_sandbox(data_dir=tmp_path_factory.mktemp("faults"), engine=IdleEngine())
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(autouse=True)
def no_faults_left(sandbox):
    yield
    sandbox.faults.clear()


@pytest.fixture
def channel(sandbox):
    channel = grpc.insecure_channel(sandbox.endpoint)
    try:
        yield channel
    finally:
        channel.close()


@pytest.fixture
def admin(channel):
    return admin_pb2_grpc.AdminServiceStub(channel)


def failure_of(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def test_rpc_counts_count_every_call_per_method(sandbox, admin):
    before = sandbox.rpc_counts.snapshot()

    admin.GetVersion(VERSION)
    admin.GetVersion(VERSION)
    admin.GetDomains(DOMAINS)

    assert sandbox.rpc_counts.since(before) == {"GetVersion": 2, "GetDomains": 1}


def test_rpc_counts_are_zero_for_a_method_never_called(sandbox):
    assert sandbox.rpc_counts["RecoverExecution"] == 0
    assert "RecoverExecution" not in sandbox.rpc_counts


def test_rpc_counts_include_calls_that_failed(sandbox, admin):
    before = sandbox.rpc_counts["GetVersion"]

    with sandbox.faults.injected(failure_rate=1.0, methods=["GetVersion"]):
        failure_of(lambda: admin.GetVersion(VERSION))

    assert sandbox.rpc_counts["GetVersion"] == before + 1


def test_fixed_latency_delays_each_call(sandbox, admin):
    with sandbox.faults.injected(latency=0.2, methods=["GetVersion"]):
        started = time.monotonic()
        admin.GetVersion(VERSION)
        elapsed = time.monotonic() - started

    assert elapsed >= 0.2


def test_latency_range_delays_each_call_by_at_least_its_low_end(sandbox, admin):
    before = sandbox.faults.injected_counts["latency"]

    with sandbox.faults.injected(latency=(0.05, 0.1), methods=["GetVersion"]):
        for _ in range(3):
            started = time.monotonic()
            admin.GetVersion(VERSION)
            assert time.monotonic() - started >= 0.05

    assert sandbox.faults.injected_counts["latency"] == before + 3


def test_failure_rate_of_one_answers_every_call_unavailable(sandbox, admin):
    with sandbox.faults.injected(failure_rate=1.0, methods=["GetVersion"]):
        error = failure_of(lambda: admin.GetVersion(VERSION))

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "injected fault" in error.details()


def test_failure_rate_fails_about_that_share_of_calls(sandbox, admin):
    failures = 0
    with sandbox.faults.injected(failure_rate=0.5, methods=["GetVersion"]):
        for _ in range(200):
            try:
                admin.GetVersion(VERSION)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                failures += 1

    # Binomial(200, 0.5): outside 60..140 with a probability below 1e-8.
    assert 60 <= failures <= 140


def test_failure_code_can_be_another_status(sandbox, admin):
    with sandbox.faults.injected(fail_next=1, failure_code="PERMISSION_DENIED"):
        error = failure_of(lambda: admin.GetVersion(VERSION))

    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_fail_next_fails_exactly_that_many_calls_then_answers(sandbox, admin):
    sandbox.faults.set(fail_next=2, methods=["GetVersion"])

    codes = []
    for _ in range(3):
        try:
            admin.GetVersion(VERSION)
            codes.append("OK")
        except grpc.RpcError as error:
            codes.append(error.code().name)

    assert codes == ["UNAVAILABLE", "UNAVAILABLE", "OK"]
    assert sandbox.faults.settings.fail_next == 0


def test_fail_after_handling_keeps_the_effect_but_loses_the_answer(sandbox, admin):
    project = project_pb2.Project(id="afterhandling", name="afterhandling")

    with sandbox.faults.injected(fail_next=1, fail_after_handling=True):
        error = failure_of(
            lambda: admin.RegisterProject(project_pb2.ProjectRegisterRequest(project=project))
        )

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    stored = admin.GetProject(project_pb2.ProjectGetRequest(id="afterhandling"))
    assert stored.name == "afterhandling"


def test_faults_apply_only_to_the_named_methods(sandbox, admin):
    with sandbox.faults.injected(failure_rate=1.0, methods=["GetVersion"]):
        domains = admin.GetDomains(DOMAINS)

    assert len(domains.domains) == 3


def test_black_hole_holds_a_call_until_its_deadline(sandbox, admin):
    with sandbox.faults.injected(black_hole=True, methods=["GetVersion"]):
        started = time.monotonic()
        error = failure_of(lambda: admin.GetVersion(VERSION, timeout=0.3))
        elapsed = time.monotonic() - started

    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed >= 0.3


def test_black_hole_frees_the_server_thread_when_the_deadline_passes(sandbox, admin):
    with sandbox.faults.injected(black_hole=True, methods=["GetVersion"]):
        failure_of(lambda: admin.GetVersion(VERSION, timeout=0.2))
        deadline = time.monotonic() + 5
        while sandbox.faults.held_calls and time.monotonic() < deadline:
            time.sleep(0.02)

        assert sandbox.faults.held_calls == 0


def test_black_hole_answers_unavailable_after_its_limit_when_the_call_has_no_deadline(
    sandbox, admin
):
    with sandbox.faults.injected(black_hole=True, black_hole_limit=0.3, methods=["GetVersion"]):
        error = failure_of(lambda: admin.GetVersion(VERSION))

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "black hole" in error.details()


def test_switching_the_black_hole_off_answers_the_held_calls(sandbox, admin):
    answers: list = []
    sandbox.faults.set(black_hole=True, methods=["GetVersion"])
    caller = threading.Thread(target=lambda: answers.append(admin.GetVersion(VERSION, timeout=10)))
    caller.start()
    deadline = time.monotonic() + 5
    while not sandbox.faults.held_calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sandbox.faults.held_calls == 1

    sandbox.faults.set(black_hole=False)
    caller.join(timeout=5)

    assert answers[0].control_plane_version.Version.startswith("v1.16")


EXCESS = 8


def _hold_more_calls_than_the_limit(sandbox, admin) -> list[grpc.Future]:
    """Sends EXCESS GetVersion calls beyond the held-call limit; returns once those are answered.

    Without a limit the held calls take every worker thread, and this returns after 2 s.
    """
    calls = [
        admin.GetVersion.future(VERSION, timeout=10)
        for _ in range(sandbox.faults.max_held_calls + EXCESS)
    ]
    deadline = time.monotonic() + 2
    while sum(call.done() for call in calls) < EXCESS and time.monotonic() < deadline:
        time.sleep(0.02)
    return calls


def test_black_holed_calls_beyond_the_limit_do_not_stall_other_methods(sandbox, admin):
    sandbox.faults.set(black_hole=True, methods=["GetVersion"])
    calls = _hold_more_calls_than_the_limit(sandbox, admin)

    domains = admin.GetDomains(DOMAINS, timeout=2)
    answered_at_once = [call.exception() for call in calls if call.done()]
    held = [call for call in calls if not call.done()]
    sandbox.faults.clear()

    assert len(domains.domains) == 3
    assert len(held) == sandbox.faults.max_held_calls
    assert len(answered_at_once) == EXCESS
    assert {error.code() for error in answered_at_once} == {grpc.StatusCode.UNAVAILABLE}
    assert "held in a black hole" in answered_at_once[0].details()
    assert all(call.result().control_plane_version.Version for call in held)


def test_delayed_calls_beyond_the_limit_do_not_stall_other_methods(sandbox, admin):
    sandbox.faults.set(latency=4.0, methods=["GetVersion"])
    calls = _hold_more_calls_than_the_limit(sandbox, admin)

    domains = admin.GetDomains(DOMAINS, timeout=1.5)

    assert len(domains.domains) == 3
    assert all(call.result().control_plane_version.Version for call in calls)


def test_dropped_connection_fails_the_call_at_the_transport_level(sandbox, admin):
    admin.GetVersion(VERSION)

    with sandbox.faults.injected(drop_rate=1.0, methods=["GetVersion"]):
        error = failure_of(lambda: admin.GetVersion(VERSION, timeout=5))

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    # The status comes from the client's transport (socket closed), not from a handler.
    assert "injected fault" not in error.details()


def test_core_transport_reconnects_after_a_dropped_connection(sandbox):
    from flyte_bridge.config import ClientConfig
    from flyte_bridge.transport import SyncTransport

    config = ClientConfig.for_sandbox(sandbox.endpoint, retry_initial_backoff=0.01)
    drops = sandbox.faults.injected_counts["drop"]

    with SyncTransport(config) as transport:
        transport.unary("admin", "GetVersion", VERSION, idempotent=True)
        sandbox.faults.set(drop_next=1, methods=["GetVersion"])
        response = transport.unary("admin", "GetVersion", VERSION, idempotent=True)

    assert response.control_plane_version.Version.startswith("v1.16")
    assert sandbox.faults.injected_counts["drop"] == drops + 1


def test_drop_connections_closes_an_idle_client_connection(sandbox, channel, admin):
    admin.GetVersion(VERSION)
    states: list[grpc.ChannelConnectivity] = []
    seen_drop = threading.Event()

    def record(state: grpc.ChannelConnectivity) -> None:
        states.append(state)
        if state != grpc.ChannelConnectivity.READY:
            seen_drop.set()

    channel.subscribe(record)
    try:
        dropped = sandbox.faults.drop_connections()
        seen_drop.wait(5)
    finally:
        channel.unsubscribe(record)

    assert dropped >= 1
    assert states[0] == grpc.ChannelConnectivity.READY
    assert seen_drop.is_set()
    assert admin.GetVersion(VERSION, timeout=5).control_plane_version.Version


def test_injected_restores_the_previous_settings(sandbox):
    sandbox.faults.set(latency=0.01)

    with sandbox.faults.injected(failure_rate=0.5) as inside:
        assert inside == FaultSettings(latency=0.01, failure_rate=0.5)

    assert sandbox.faults.settings == FaultSettings(latency=0.01)


def test_core_transport_retries_through_injected_unavailable(sandbox):
    from flyte_bridge.config import ClientConfig
    from flyte_bridge.transport import SyncTransport

    config = ClientConfig.for_sandbox(sandbox.endpoint, retry_initial_backoff=0.01)
    before = sandbox.rpc_counts["GetVersion"]
    sandbox.faults.set(fail_next=2, methods=["GetVersion"])

    with SyncTransport(config) as transport:
        response = transport.unary("admin", "GetVersion", VERSION, idempotent=True)

    assert response.control_plane_version.Version.startswith("v1.16")
    assert sandbox.rpc_counts["GetVersion"] == before + 3


def test_faults_given_at_start_are_in_force_from_the_first_call(tmp_path):
    from flyte_bridge.sandbox import start_sandbox

    faults = {"fail_next": 1, "methods": ["GetVersion"]}
    with start_sandbox(data_dir=tmp_path, engine=IdleEngine(), faults=faults) as running:
        channel = grpc.insecure_channel(running.endpoint)
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        try:
            error = failure_of(lambda: admin.GetVersion(VERSION))
            answer = admin.GetVersion(VERSION)
        finally:
            channel.close()

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert answer.control_plane_version.Version


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"drop_rate": -0.1}, "drop_rate"),
        ({"latency": (0.2, 0.1)}, "latency"),
        ({"latency": "fast"}, "latency"),
        ({"failure_code": "OK"}, "failure_code"),
        ({"methods": "GetVersion"}, "methods"),
        ({"methods": ["GetVersion", "NoSuchMethod"]}, "serves no method 'NoSuchMethod'"),
        ({"latency": float("inf")}, "latency"),
        ({"black_hole_limit": float("inf")}, "black_hole_limit"),
        ({"fail_next": -1}, "fail_next"),
        ({"drop_next": 1.5}, "drop_next"),
        ({"black_hole_limit": 0}, "black_hole_limit"),
        ({"jitter": 0.1}, "jitter"),
        ({"black_hole": "false"}, "black_hole must be True or False, got 'false'"),
        ({"black_hole": 1}, "black_hole must be True or False, got 1"),
        ({"fail_after_handling": "no"}, "fail_after_handling must be True or False"),
    ],
)
def test_bad_fault_settings_are_refused_naming_the_setting(sandbox, changes, named):
    with pytest.raises(FlyteConfigError, match=named):
        sandbox.faults.set(**changes)

    assert not sandbox.faults.settings.active


def test_a_text_boolean_given_at_start_is_refused_before_the_sandbox_starts(tmp_path):
    from flyte_bridge.sandbox import start_sandbox

    with pytest.raises(FlyteConfigError, match="black_hole must be True or False, got 'false'"):
        start_sandbox(data_dir=tmp_path, engine=IdleEngine(), faults={"black_hole": "false"})

    with start_sandbox(data_dir=tmp_path, engine=IdleEngine()) as running:
        assert not running.faults.settings.active


def test_cli_options_become_start_arguments():
    from flyte_bridge.sandbox.start_options import start_kwargs

    kwargs = start_kwargs(
        fault_latency="0.01-0.2",
        fault_failure_rate=0.1,
        fault_methods="GetExecution, ListExecutions",
    )

    assert kwargs["faults"] == FaultSettings(
        latency=(0.01, 0.2), failure_rate=0.1, methods=["GetExecution", "ListExecutions"]
    )
    assert kwargs["auth"] is None
    assert kwargs["tls_cert"] is None


def test_the_pytest_fixture_injects_faults_into_the_session_sandbox(
    flyte_sandbox, flyte_sandbox_faults
):
    flyte_sandbox_faults.set(fail_next=1, methods=["GetVersion"])

    with grpc.insecure_channel(flyte_sandbox.endpoint) as channel:
        error = failure_of(lambda: admin_pb2_grpc.AdminServiceStub(channel).GetVersion(VERSION))

    assert error.code() == grpc.StatusCode.UNAVAILABLE
