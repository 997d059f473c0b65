"""launch(): version resolution, input checks before anything is sent, options, name reuse."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from flyte_bridge.client import FlyteClient
from flyte_bridge.errors import (
    FlyteConflictError,
    FlyteInvalidInputError,
    FlyteNotFoundError,
)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _launch_calls(calls: dict[str, int]) -> dict[str, int]:
    """The RPCs among ``calls`` that a launch sends (resolving the launch plan, creating)."""
    methods = ("GetActiveLaunchPlan", "GetLaunchPlan", "ListLaunchPlans", "CreateExecution")
    return {method: count for method, count in calls.items() if method in methods}


def test_launch_without_version_uses_the_registered_launch_plan(client, registered_examples):
    execution = client.launch("hello.hello_wf", inputs={"name": "v"})

    assert execution.launch_plan.version == registered_examples
    assert execution.launch_plan.resource_type == "LAUNCH_PLAN"


def test_launch_fills_defaults_from_the_launch_plan(client, registered_examples):
    kickoff = dt.datetime(2024, 1, 2, 6, tzinfo=dt.timezone.utc)

    execution = client.launch("daily_report", inputs={"kickoff_time": kickoff})

    assert client.fetch_inputs(execution) == {"kickoff_time": kickoff, "region": "eu"}


def test_launch_from_text_reads_a_rendered_datetime(client, registered_examples):
    execution = client.launch(
        "daily_report", inputs={"kickoff_time": "2024-01-02 06:00:00+00:00"}, from_text=True
    )

    kickoff = dt.datetime(2024, 1, 2, 6, tzinfo=dt.timezone.utc)
    assert client.fetch_inputs(execution) == {"kickoff_time": kickoff, "region": "eu"}


def test_launch_reports_every_input_problem_at_once_and_creates_nothing(
    client, registered_examples
):
    name = _name("bad")

    with pytest.raises(FlyteInvalidInputError) as caught:
        client.launch("daily_report", inputs={"regoin": "us", "region": 5}, name=name)

    message = str(caught.value)
    assert "unknown inputs regoin" in message
    assert "missing required inputs: kickoff_time" in message
    assert "input 'region': expected STRING" in message
    with pytest.raises(FlyteNotFoundError):
        client.fetch_execution(name)


# C03: name rules are checked before any RPC, against the configured length limit -----------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("nightly_etl_2024", "lower-case letters"),
        ("A1", "lower-case letters"),
        ("1abc", "start with a letter"),
        ("x" * 64, "at most 63"),
    ],
)
def test_c03_invalid_execution_names_fail_before_any_rpc(
    client, registered_examples, flyte_sandbox, bad, message
):
    before = flyte_sandbox.rpc_counts.snapshot()

    with pytest.raises(FlyteInvalidInputError, match=message):
        client.launch("hello.hello_wf", inputs={"name": "x"}, name=bad)

    assert not _launch_calls(flyte_sandbox.rpc_counts.since(before))


def test_c03_a_name_of_exactly_63_characters_is_accepted(client, registered_examples):
    name = _name("long").ljust(63, "x")

    execution = client.launch("hello.hello_wf", inputs={"name": "x"}, name=name)

    assert execution.id.name == name


def test_c03_an_old_admin_limit_of_20_is_enforced_locally_at_its_boundary(
    make_client, sandbox_config, registered_examples, flyte_sandbox
):
    old_admin = make_client(sandbox_config.replace(max_execution_name_length=20))
    before = flyte_sandbox.rpc_counts.snapshot()

    with pytest.raises(FlyteInvalidInputError, match="at most 20"):
        old_admin.launch("hello.hello_wf", inputs={"name": "x"}, name="a" * 21)
    assert not _launch_calls(flyte_sandbox.rpc_counts.since(before))

    exact = old_admin.launch(
        "hello.hello_wf", inputs={"name": "x"}, name=_name("c03").ljust(20, "x")
    )
    generated = old_admin.launch("hello.hello_wf", inputs={"name": "x"})
    assert len(exact.id.name) == 20
    assert len(generated.id.name) <= 20


def test_launch_sends_every_execution_option(client, registered_examples):
    execution = client.launch(
        "hello.hello_wf",
        inputs={"name": "opts"},
        labels={"team": "data"},
        annotations={"note": "x"},
        envs={"MODE": "test"},
        tags=["nightly"],
        max_parallelism=3,
        raw_output_prefix="file:///tmp/raw-out",
        service_account="runner",
        overwrite_cache=True,
    )

    spec = execution.proto.spec
    assert execution.labels == {"team": "data"}
    assert dict(spec.annotations.values) == {"note": "x"}
    assert [(kv.key, kv.value) for kv in spec.envs.values] == [("MODE", "test")]
    assert list(spec.tags) == ["nightly"]
    assert spec.max_parallelism == 3
    assert spec.raw_output_data_config.output_location_prefix == "file:///tmp/raw-out"
    assert spec.security_context.run_as.k8s_service_account == "runner"
    assert spec.overwrite_cache is True


def test_number_and_bool_labels_are_sent_as_text(sandbox_client, registered_examples):
    execution = sandbox_client.launch(
        "hello.hello_wf", inputs={"name": "labels"}, labels={"day": 20261204, "full": True}
    )

    assert execution.labels == {"day": "20261204", "full": "true"}


def test_a_label_that_is_not_text_is_refused_naming_it(
    sandbox_client, registered_examples, flyte_sandbox
):
    before = flyte_sandbox.rpc_counts.snapshot()

    with pytest.raises(FlyteInvalidInputError, match=r"labels\['team'\] must be a str"):
        sandbox_client.launch("hello.hello_wf", inputs={"name": "x"}, labels={"team": ["a"]})

    assert not _launch_calls(flyte_sandbox.rpc_counts.since(before))


def test_launch_a_single_task(client, registered_examples):
    execution = client.launch(task="hello.say_hello", inputs={"name": "task"})

    finished = client.wait(execution, timeout=120, poll_interval=0.3)

    assert execution.launch_plan.resource_type == "TASK"
    assert client.fetch_outputs(finished) == {"o0": "hello task"}


def test_launch_of_an_unknown_launch_plan_raises_not_found(client, registered_examples):
    with pytest.raises(FlyteNotFoundError, match="no_such_plan"):
        client.launch("no_such_plan")


def test_launch_into_a_mistyped_project_says_the_project_is_unknown(client, registered_examples):
    with pytest.raises(FlyteNotFoundError, match="project 'flytesnaks' is not registered"):
        client.launch("hello.hello_wf", project="flytesnaks", inputs={"name": "x"})


def test_launch_of_an_unknown_plan_in_a_known_project_names_only_the_plan(
    client, registered_examples
):
    with pytest.raises(FlyteNotFoundError) as raised:
        client.launch("no_such_plan")

    assert str(raised.value).endswith("no_such_plan is registered")


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"ÜPPER": "x"}, "label key 'ÜPPER' is not a Kubernetes label name"),
        ({"team": "data science"}, "label value 'data science' of 'team' is not a Kubernetes"),
        ({"-team": "x"}, "label key '-team'"),
    ],
)
def test_labels_kubernetes_would_refuse_fail_before_anything_is_sent(
    client, registered_examples, flyte_sandbox, labels, expected
):
    before = flyte_sandbox.rpc_counts.snapshot()
    with pytest.raises(FlyteInvalidInputError, match=expected):
        client.launch("hello.hello_wf", inputs={"name": "x"}, labels=labels)
    with pytest.raises(FlyteInvalidInputError, match=expected):
        client.launch_backfill(
            "daily_report",
            dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
            dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc),
            labels=labels,
            dry_run=True,
        )

    assert "CreateExecution" not in flyte_sandbox.rpc_counts.since(before)


def test_labels_kubernetes_takes_are_sent():
    from flyte_bridge.naming import label_problem

    for key, value in (("team", "data-science"), ("example.com/owner", "a.b_c"), ("k", "")):
        assert label_problem(key, value) is None, (key, value)


def test_launch_of_a_version_that_does_not_exist_names_the_newest(client, registered_examples):
    newest = client.fetch_launch_plan("hello.hello_wf").id.version
    with pytest.raises(FlyteNotFoundError) as raised:
        client.launch("hello.hello_wf", version="v999", inputs={"name": "x"})

    assert str(raised.value).startswith(
        f"launch plan flytesnacks/development/hello.hello_wf has no version 'v999'; the newest is "
        f"{newest!r}"
    )


def test_execution_lookups_in_an_unknown_project_or_domain_say_so(client, registered_examples):
    for lookup in (
        lambda: client.fetch_execution("flytesnaks/development/some-run"),
        lambda: client.list_signals("flytesnaks/development/some-run"),
        lambda: client.approve("flytesnaks/development/some-run", "review"),
        lambda: client.execution_metrics("flytesnaks/development/some-run"),
        lambda: client.terminate("flytesnaks/development/some-run"),
        lambda: client.wait("flytesnaks/development/some-run", timeout=5, poll_interval=0.1),
        lambda: client.relaunch("flytesnaks/development/some-run"),
        lambda: client.recover("flytesnaks/development/some-run"),
    ):
        with pytest.raises(FlyteNotFoundError) as raised:
            lookup()
        assert str(raised.value).startswith(
            "no execution flytesnaks/development/some-run: project 'flytesnaks' is not registered"
        )
    with pytest.raises(FlyteNotFoundError, match="domain 'prod' is not a domain of project"):
        client.fetch_execution("flytesnacks/prod/some-run")


def test_a_missing_execution_in_a_known_scope_checks_the_scope_once(
    client, registered_examples, flyte_sandbox
):
    with FlyteClient(client.config) as fresh:  # knows no scope yet
        before = flyte_sandbox.rpc_counts.snapshot()
        for name in ("missing-one", "missing-two", "missing-three"):
            with pytest.raises(FlyteNotFoundError, match="missing entity of type execution") as e:
                fresh.fetch_execution(f"flytesnacks/development/{name}")
            assert e.value.grpc_code == "NOT_FOUND"
        calls = flyte_sandbox.rpc_counts.since(before)

    assert calls["ListProjects"] == 1
    assert calls["GetExecution"] == 3


def test_a_scope_that_could_not_be_checked_is_checked_again(
    client, registered_examples, flyte_sandbox, flyte_sandbox_faults
):
    with FlyteClient(client.config.replace(max_retries=0)) as fresh:
        with flyte_sandbox_faults.injected(failure_rate=1.0, methods=["ListProjects"]):
            with pytest.raises(FlyteNotFoundError, match="missing entity of type execution"):
                fresh.fetch_execution("flytesnaks/development/some-run")
        with pytest.raises(FlyteNotFoundError) as explained:
            fresh.fetch_execution("flytesnaks/development/some-run")

    assert "project 'flytesnaks' is not registered" in str(explained.value)
    assert explained.value.grpc_code == "NOT_FOUND"


def test_a_missing_version_stays_not_found_when_the_newest_cannot_be_read(
    client, registered_examples, flyte_sandbox_faults
):
    with FlyteClient(client.config.replace(max_retries=0)) as fresh:
        with flyte_sandbox_faults.injected(failure_rate=1.0, methods=["ListLaunchPlans"]):
            with pytest.raises(FlyteNotFoundError) as raised:
                fresh.launch("hello.hello_wf", version="v999", inputs={"name": "x"})

    assert "v999" in str(raised.value)
    assert raised.value.grpc_code == "NOT_FOUND"


def test_find_execution_gives_none_for_a_name_not_launched_and_asks_nothing_else(
    client, registered_examples, flyte_sandbox
):
    from flyte_bridge.reattach import launch_or_reattach

    with FlyteClient(client.config) as fresh:  # knows no scope yet
        before = flyte_sandbox.rpc_counts.snapshot()
        assert fresh.find_execution(_name("absent")) is None
        decision = launch_or_reattach(
            fresh,
            ("find", "launch", _name("step"), -1),
            lambda name: fresh.launch("hello.hello_wf", inputs={"name": "a"}, name=name),
        )
        calls = flyte_sandbox.rpc_counts.since(before)

    assert decision.action == "launched"
    assert client.find_execution(decision.execution.id).id == decision.execution.id
    assert "ListProjects" not in calls, calls
    assert calls["CreateExecution"] == 1


def test_a_step_follows_its_run_only_while_its_arguments_are_the_same(
    sandbox_client, registered_examples
):
    from flyte_bridge.reattach import launch_or_reattach

    step = ("edited", "launch", _name("step"), -1)

    def decide(target: str, inputs: dict, recover: bool = False):
        return launch_or_reattach(
            sandbox_client,
            step,
            lambda name: sandbox_client.launch(target, inputs=inputs, name=name),
            recover=recover,
            same_request_only=True,
        )

    first = decide("hello.hello_wf", {"name": "a"})
    sandbox_client.wait(first.execution, timeout=120, poll_interval=0.3)

    again = decide("hello.hello_wf", {"name": "a"})
    with pytest.raises(FlyteConflictError) as other_inputs:
        decide("hello.hello_wf", {"name": "b"})
    with pytest.raises(FlyteConflictError) as other_entity:
        decide("branching.branch_wf", {"x": 1})

    assert (first.action, again.action) == ("launched", "reused")
    assert again.execution.id == first.execution.id
    assert "which had other inputs: name: an earlier try of step" in str(other_inputs.value)
    assert "launch the new arguments from a new run of the DAG or job" in str(other_inputs.value)
    assert "which ran launch plan flytesnacks/development/hello.hello_wf@" in str(
        other_entity.value
    )


def test_a_step_recovers_its_failed_run_only_with_the_same_arguments(
    sandbox_client, registered_examples
):
    from flyte_bridge.reattach import launch_or_reattach

    step = ("edited", "recover", _name("step"), -1)

    def decide(inputs: dict):
        return launch_or_reattach(
            sandbox_client,
            step,
            lambda name: sandbox_client.launch("failures.failing_wf", inputs=inputs, name=name),
            recover=True,
            same_request_only=True,
        )

    first = decide({"reason": "x"}).execution
    assert sandbox_client.wait(first, timeout=120, poll_interval=0.3).phase_name == "FAILED"

    fixed = decide({"reason": "y"})  # new arguments: launched afresh, not recovered from x
    failed = sandbox_client.wait(fixed.execution, timeout=120, poll_interval=0.3)
    recovered = decide({"reason": "y"})

    assert (fixed.action, fixed.generation, fixed.previous.id) == ("launched", 1, first.id)
    assert sandbox_client.fetch_inputs(fixed.execution) == {"reason": "y"}
    assert failed.phase_name == "FAILED"
    assert (recovered.action, recovered.previous.id) == ("recovered", failed.id)


def test_a_step_whose_check_cannot_be_made_follows_its_run(sandbox_client, registered_examples):
    from flyte_bridge.reattach import launch_or_reattach

    step = ("unchecked", "launch", _name("step"), -1)
    first = launch_or_reattach(
        sandbox_client,
        step,
        lambda name: sandbox_client.launch("hello.hello_wf", inputs={"name": "a"}, name=name),
        same_request_only=True,
    )

    def check_that_fails(name: str):  # as a launch whose local file input is gone
        raise FlyteInvalidInputError(f"input 'f' of {name}: no such file or directory")

    again = launch_or_reattach(sandbox_client, step, check_that_fails, same_request_only=True)

    assert again.execution.id == first.execution.id
    assert again.action in ("reattached", "reused")


# C02: a taken name is reattached to only for the same entity and inputs ---------------------


def test_c02_same_name_same_entity_same_inputs_reattaches(
    client, registered_examples, flyte_sandbox
):
    name = _name("same")
    first = client.launch("hello.hello_wf", inputs={"name": "a"}, name=name)
    before = flyte_sandbox.rpc_counts.snapshot()

    second = client.launch("hello.hello_wf", inputs={"name": "a"}, name=name)

    assert second.id == first.id
    assert flyte_sandbox.rpc_counts.since(before)["CreateExecution"] == 1


def test_c02_same_name_other_inputs_is_a_conflict(client, registered_examples):
    name = _name("inputs")
    client.launch("hello.hello_wf", inputs={"name": "a"}, name=name)

    with pytest.raises(FlyteConflictError, match=name) as conflict:
        client.launch("hello.hello_wf", inputs={"name": "b"}, name=name)

    assert "which had other inputs: name; choose another name" in str(conflict.value)


def test_c02_same_name_other_launch_plan_is_a_conflict(client, registered_examples):
    name = _name("entity")
    client.launch("hello.hello_wf", inputs={"name": "a"}, name=name)

    with pytest.raises(FlyteConflictError) as conflict:
        client.launch("branching.branch_wf", inputs={"x": 1}, name=name)

    assert "which ran launch plan flytesnacks/development/hello.hello_wf@" in str(conflict.value)
    assert ", not launch plan flytesnacks/development/branching.branch_wf@" in str(conflict.value)


def test_c02_reattaching_to_a_failed_run_returns_it_failed_not_successful(client, finished_runs):
    failing = finished_runs["failing"]

    again = client.launch("failures.failing_wf", name=failing.id.name)

    assert again.id == failing.id
    assert again.phase.name == "FAILED"
    assert not again.is_successful
