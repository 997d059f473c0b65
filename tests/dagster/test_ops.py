"""The step-by-step ops against the sandbox (launch, signals and waiting run in the example job)."""

import uuid

import dagster as dg
import pytest

from dagster_resources import (
    FlyteResource,
    approve_flyte_gate,
    backfill_flyte_launch_plan,
    launch_flyte_execution,
    reject_flyte_gate,
    terminate_flyte_execution,
    wait_for_flyte_execution,
)

pytestmark = pytest.mark.slow


def test_terminate_op_aborts_a_running_execution(flyte, client):
    execution = client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 600})

    @dg.job
    def stop():
        terminate_flyte_execution()

    result = stop.execute_in_process(
        resources={"flyte": flyte},
        run_config={
            "ops": {"terminate_flyte_execution": {"config": {"execution_id": str(execution.id)}}}
        },
    )

    assert result.success
    stopped = client.wait(execution, timeout=60, poll_interval=0.2)
    assert stopped.phase_name == "ABORTED"


def test_waiting_for_an_aborted_execution_fails_with_its_cause_and_the_phase_once(flyte, client):
    execution = client.launch("long_sleep.long_sleep_wf", inputs={"seconds": 600})
    client.terminate(execution, cause="not needed")

    @dg.job
    def follow():
        wait_for_flyte_execution()

    result = follow.execute_in_process(
        resources={"flyte": flyte},
        raise_on_error=False,
        run_config={
            "ops": {"wait_for_flyte_execution": {"config": {"execution_id": str(execution.id)}}}
        },
    )

    (failure,) = [event for event in result.all_events if event.is_step_failure]
    data = failure.step_failure_data.user_failure_data
    ended = f"Flyte execution {execution.id} ended ABORTED: not needed ("
    assert data.description.startswith(ended)
    assert data.metadata["flyte/error"].value == "not needed"


def test_backfill_op_dry_run_lists_the_schedule_ticks_without_launching(flyte):
    @dg.job
    def plan():
        backfill_flyte_launch_plan()

    result = plan.execute_in_process(
        resources={"flyte": flyte},
        run_config={
            "ops": {
                "backfill_flyte_launch_plan": {
                    "config": {
                        "launch_plan": "daily_report",
                        "start": "2024-01-01T00:00:00+00:00",
                        "end": "2024-01-03T23:00:00+00:00",
                        "dry_run": True,
                    }
                }
            }
        },
    )

    assert result.output_for_node("backfill_flyte_launch_plan") == ""
    (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    ticks = output.step_output_data.metadata["flyte/backfill_ticks"].value
    assert ticks == [
        "2024-01-01T06:00:00+00:00",
        "2024-01-02T06:00:00+00:00",
        "2024-01-03T06:00:00+00:00",
    ]


def test_rejecting_the_gate_fails_the_waiting_op_with_the_reason(flyte, client):
    @dg.job
    def rejected_release():
        wait_for_flyte_execution(reject_flyte_gate(launch_flyte_execution()))

    result = rejected_release.execute_in_process(
        resources={"flyte": flyte},
        raise_on_error=False,
        run_config={
            "ops": {
                "launch_flyte_execution": {
                    "config": {"launch_plan": "approvals.approval_wf", "wait": False}
                },
                "reject_flyte_gate": {"config": {"signal_id": "review", "wait_for_gate": 120}},
            }
        },
    )

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "wait_for_flyte_execution"
    description = failure.step_failure_data.user_failure_data.description
    assert "ended FAILED" in description
    assert "reject" in description.lower()
    execution = client.fetch_execution(result.output_for_node("reject_flyte_gate"))
    assert execution.labels["dagster-run-id"] == result.run_id


def test_an_execution_launched_without_waiting_runs_on_when_a_later_op_fails(flyte, client):
    @dg.job
    def misspelt_release():
        approve_flyte_gate(launch_flyte_execution())

    result = misspelt_release.execute_in_process(
        resources={"flyte": flyte},
        raise_on_error=False,
        run_config={
            "ops": {
                "launch_flyte_execution": {
                    "config": {"launch_plan": "approvals.approval_wf", "wait": False}
                },
                "approve_flyte_gate": {"config": {"signal_id": "reveiw"}},
            }
        },
    )

    execution_id = result.output_for_node("launch_flyte_execution")
    try:
        assert not result.success
        (failure,) = [event for event in result.all_events if event.is_step_failure]
        assert failure.step_key == "approve_flyte_gate"
        assert "has no signal 'reveiw'" in failure.step_failure_data.user_failure_data.description
        # What README says: the run is the user's to end; the failed job does not terminate it.
        assert not client.fetch_execution(execution_id).is_done
    finally:
        client.terminate(execution_id, cause="test over")


def test_backfill_op_runs_the_schedule_ticks_as_one_labelled_flyte_execution(flyte, client):
    @dg.job
    def backfill():
        backfill_flyte_launch_plan()

    result = backfill.execute_in_process(
        resources={"flyte": flyte},
        run_config={
            "ops": {
                "backfill_flyte_launch_plan": {
                    "config": {
                        "launch_plan": "daily_report",
                        "start": "2024-05-01T06:00:00+00:00",
                        "end": "2024-05-02T06:00:00+00:00",
                        "parallel": True,
                    }
                }
            }
        },
    )

    execution = client.sync(
        client.fetch_execution(result.output_for_node("backfill_flyte_launch_plan"))
    )
    assert execution.phase_name == "SUCCEEDED"
    assert execution.labels["dagster-run-id"] == result.run_id
    kickoffs = sorted(
        client.fetch_inputs(node.child_execution)["kickoff_time"]
        for node in execution.node_executions.values()
    )
    assert [kickoff.day for kickoff in kickoffs] == [1, 2]


def test_launch_op_names_fit_the_resource_name_length_limit(flyte_sandbox, flyte, client):
    short_names = FlyteResource(
        endpoint=flyte_sandbox.endpoint,
        insecure=True,
        default_project=flyte.default_project,
        default_domain=flyte.default_domain,
        poll_interval=0.2,
        max_execution_name_length=20,
    )

    @dg.job
    def launch():
        launch_flyte_execution()

    result = launch.execute_in_process(
        resources={"flyte": short_names},
        run_config={
            "ops": {
                "launch_flyte_execution": {
                    "config": {"launch_plan": "hello.hello_wf", "inputs": {"name": "short"}}
                }
            }
        },
    )

    assert result.success
    execution_id = result.output_for_node("launch_flyte_execution")
    name = execution_id.rsplit("/", 1)[-1]
    assert len(name) <= 20
    assert client.fetch_outputs(execution_id) == {"o0": "hello short"}


def _launch_job_with_one_retry() -> dg.JobDefinition:
    @dg.job(name=f"launch_{uuid.uuid4().hex[:8]}")
    def launch():
        launch_flyte_execution.with_retry_policy(dg.RetryPolicy(max_retries=1))()

    return launch


def _launch_config(config: dict) -> dict:
    return {"ops": {"launch_flyte_execution": {"config": config}}}


def test_a_retry_with_a_fixed_execution_name_finds_the_first_trys_execution(flyte, client):
    name = f"fixed-{uuid.uuid4().hex[:10]}"
    config = {
        "launch_plan": "failures.failing_wf",
        "inputs": {"reason": "fails every try"},
        "execution_name": name,
    }

    result = _launch_job_with_one_retry().execute_in_process(
        resources={"flyte": flyte}, run_config=_launch_config(config), raise_on_error=False
    )

    assert not result.success
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retried) == 1, "the op was not retried"
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    execution = client.fetch_execution(name)
    assert str(execution.id) in failure.step_failure_data.user_failure_data.description
    assert execution.phase_name == "FAILED"
    assert _executions_of_run(client, result.run_id) == [execution.id]


def test_without_an_execution_name_a_retry_after_a_failed_run_launches_the_next(flyte, client):
    config = {"launch_plan": "failures.failing_wf", "inputs": {"reason": "fails every try"}}
    job = _launch_job_with_one_retry()

    result = job.execute_in_process(
        resources={"flyte": flyte}, run_config=_launch_config(config), raise_on_error=False
    )

    assert not result.success
    tries = [
        client.fetch_execution(
            client.step_execution_name(
                "dagster", result.run_id, "launch_flyte_execution", generation=retry
            )
        )
        for retry in (0, 1)
    ]
    assert [execution.phase_name for execution in tries] == ["FAILED", "FAILED"]
    assert sorted(_executions_of_run(client, result.run_id), key=str) == sorted(
        (execution.id for execution in tries), key=str
    )


def _executions_of_run(client, run_id: str) -> list:
    """The ids of the recent executions labelled with the Dagster run."""
    recent = client.recent_executions(limit=50)
    return [e.id for e in recent if e.labels.get("dagster-run-id") == run_id]


def _log_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The messages the run's ops logged, from the Dagster event log."""
    return [entry.user_message for entry in instance.all_logs(run_id) if not entry.is_dagster_event]


def _launch_once(flyte, instance, config: dict) -> dg.ExecuteInProcessResult:
    @dg.job(name=f"launch_{uuid.uuid4().hex[:8]}")
    def launch():
        launch_flyte_execution()

    return launch.execute_in_process(
        resources={"flyte": flyte},
        run_config=_launch_config(config),
        instance=instance,
        raise_on_error=False,
    )


def test_a_retry_that_finds_its_failed_execution_logs_that_and_fails_without_launching(flyte):
    config = {
        "launch_plan": "failures.failing_wf",
        "inputs": {"reason": "fails every try"},
        "execution_name": f"fixed-{uuid.uuid4().hex[:10]}",
    }
    with dg.instance_for_test() as instance:
        result = _launch_job_with_one_retry().execute_in_process(
            resources={"flyte": flyte},
            run_config=_launch_config(config),
            instance=instance,
            raise_on_error=False,
        )
        messages = _log_messages(instance, result.run_id)

    execution_id = f"flytesnacks/development/{config['execution_name']}"
    launched = [m for m in messages if m.startswith("Launched Flyte execution")]
    found = [m for m in messages if m.startswith("Found Flyte execution")]
    assert len(launched) == 1, "the retry logged a launch"
    assert launched[0].startswith(f"Launched Flyte execution {execution_id}: http")
    (message,) = found
    assert message.startswith(
        f"Found Flyte execution {execution_id}, which already ended FAILED under this name"
    )
    assert "the op fails with its error" in message


def test_a_launch_under_a_name_that_already_succeeded_logs_that_it_reports_that_run(flyte):
    config = {
        "launch_plan": "hello.hello_wf",
        "inputs": {"name": "once"},
        "execution_name": f"fixed-{uuid.uuid4().hex[:10]}",
    }
    with dg.instance_for_test() as instance:
        first = _launch_once(flyte, instance, config)
        again = _launch_once(flyte, instance, config)
        first_messages = _log_messages(instance, first.run_id)
        messages = _log_messages(instance, again.run_id)

    assert first.success and again.success
    execution_id = first.output_for_node("launch_flyte_execution")
    assert again.output_for_node("launch_flyte_execution") == execution_id
    assert any(m.startswith(f"Launched Flyte execution {execution_id}") for m in first_messages)
    assert not any(m.startswith("Launched") for m in messages)
    assert any(
        m.startswith(f"Found Flyte execution {execution_id}, which already SUCCEEDED")
        for m in messages
    )


def test_a_launch_under_the_name_of_a_running_execution_logs_that_it_reattached(flyte, client):
    config = {
        "launch_plan": "long_sleep.long_sleep_wf",
        "inputs": {"seconds": 600},
        "execution_name": f"fixed-{uuid.uuid4().hex[:10]}",
        "wait": False,
    }
    try:
        with dg.instance_for_test() as instance:
            first = _launch_once(flyte, instance, config)
            again = _launch_once(flyte, instance, config)
            messages = _log_messages(instance, again.run_id)
    finally:
        client.terminate(config["execution_name"], cause="test done")

    execution_id = first.output_for_node("launch_flyte_execution")
    assert again.success and again.output_for_node("launch_flyte_execution") == execution_id
    assert not any(m.startswith("Launched") for m in messages)
    (message,) = [m for m in messages if m.startswith("Reattached")]
    assert message.startswith(f"Reattached to Flyte execution {execution_id}, still ")
    assert "not launched again; passing its id on without waiting" in message


def test_without_an_execution_name_a_try_follows_the_run_an_earlier_try_left_running(flyte, client):
    run_id = str(uuid.uuid4())
    earlier = client.launch(
        "long_sleep.long_sleep_wf",
        inputs={"seconds": 3},
        name=client.step_execution_name("dagster", run_id, "launch_flyte_execution"),
    )
    config = {"launch_plan": "long_sleep.long_sleep_wf", "inputs": {"seconds": 3}}

    with dg.instance_for_test() as instance:
        result = _launch_job_with_one_retry().execute_in_process(
            resources={"flyte": flyte},
            run_config=_launch_config(config),
            instance=instance,
            run_id=run_id,
        )
        messages = _log_messages(instance, run_id)

    assert result.output_for_node("launch_flyte_execution") == str(earlier.id)
    # Still running when the op looks, under load possibly finished already: followed either way.
    followed = (
        f"Reattached to Flyte execution {earlier.id}",
        f"Found Flyte execution {earlier.id}",
    )
    assert any(m.startswith(followed) for m in messages)
    assert not any(m.startswith("Launched Flyte execution") for m in messages)
    assert client.fetch_execution(earlier.id).phase_name == "SUCCEEDED"


def test_a_retry_finds_the_runs_of_a_launch_plan_named_with_its_own_project_and_domain(
    flyte_sandbox, flyte, client
):
    elsewhere = FlyteResource(
        endpoint=flyte_sandbox.endpoint,
        insecure=True,
        default_project="flytesnacks",
        default_domain="staging",  # the launch plan names development itself
        poll_interval=0.2,
        wait_timeout=240,
    )
    config = {
        "launch_plan": "flytesnacks/development/failures.failing_wf",
        "inputs": {"reason": "fails every try"},
    }

    result = _launch_job_with_one_retry().execute_in_process(
        resources={"flyte": elsewhere}, run_config=_launch_config(config), raise_on_error=False
    )

    assert not result.success
    tries = [
        client.fetch_execution(
            client.step_execution_name(
                "dagster", result.run_id, "launch_flyte_execution", generation=retry
            ),
            project="flytesnacks",
            domain="development",
        )
        for retry in (0, 1)
    ]
    assert [execution.phase_name for execution in tries] == ["FAILED", "FAILED"]


def _sleep_past_a_short_wait_timeout(flyte_sandbox, **resource_fields):
    """A launch op whose execution sleeps for 600 s under a resource whose wait_timeout is 2 s;
    the failure's description, the run's log messages and the execution."""
    impatient = FlyteResource(
        endpoint=flyte_sandbox.endpoint,
        insecure=True,
        default_project="flytesnacks",
        default_domain="development",
        poll_interval=0.2,
        wait_timeout=2,
        **resource_fields,
    )

    @dg.job
    def sleep():
        launch_flyte_execution()

    config = {"launch_plan": "long_sleep.long_sleep_wf", "inputs": {"seconds": 600}}
    with dg.instance_for_test() as instance:
        result = sleep.execute_in_process(
            resources={"flyte": impatient},
            run_config=_launch_config(config),
            raise_on_error=False,
            instance=instance,
        )
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    data = failure.step_failure_data.user_failure_data
    return data, messages


def test_a_wait_timeout_says_the_execution_was_terminated(flyte_sandbox, client):
    data, messages = _sleep_past_a_short_wait_timeout(flyte_sandbox)

    execution_id = data.metadata["flyte/execution_id"].value
    assert data.description.startswith(
        f"Flyte execution {execution_id} did not finish within the wait_timeout of 2 s (last phase "
    )
    assert data.description.endswith("; it was terminated (it ends ABORTED)")
    assert f"wait_timeout of 2 s passed: terminating Flyte execution {execution_id}" in messages
    stopped = client.wait(execution_id, timeout=60, poll_interval=0.2)
    assert stopped.phase_name == "ABORTED"


def test_a_wait_timeout_without_terminate_on_interrupt_says_it_left_the_execution_running(
    flyte_sandbox, client
):
    data, messages = _sleep_past_a_short_wait_timeout(flyte_sandbox, terminate_on_interrupt=False)

    execution_id = data.metadata["flyte/execution_id"].value
    try:
        assert data.description.endswith(
            "; it was left running (terminate_on_interrupt=False): end it with "
            f"`flyte-bridge executions terminate {execution_id} --endpoint "
            f"{flyte_sandbox.endpoint} --insecure`"
        )
        assert (
            f"wait_timeout of 2 s passed: leaving Flyte execution {execution_id} running "
            "(terminate_on_interrupt=False)"
        ) in messages
        assert client.fetch_execution(execution_id).phase_name in ("QUEUED", "RUNNING")
    finally:
        client.terminate(execution_id, cause="the test is over")


def _release_job():
    from dagster_resources import set_flyte_input

    @dg.job
    def checked_release():
        wait_for_flyte_execution(set_flyte_input(approve_flyte_gate(launch_flyte_execution())))

    return checked_release


@pytest.mark.parametrize(
    ("gate_configs", "expected"),
    [
        (
            {
                "approve_flyte_gate": {"signal_id": "review", "wait_for_gate": 120},
                "set_flyte_input": {"signal_id": "rollout_percent", "value": "lots"},
            },
            "Not launching approvals.approval_wf: op set_flyte_input would give gate "
            "'rollout_percent' the value 'lots', which it refuses: ",
        ),
        (
            {
                "approve_flyte_gate": {"signal_id": "review", "wait_for_gate": -5},
                "set_flyte_input": {"signal_id": "rollout_percent", "value": 25.0},
            },
            "Not launching approvals.approval_wf: the config of op approve_flyte_gate, which "
            "acts on this execution, is refused (wait_for_gate: Input should be greater than "
            "or equal to 0)",
        ),
    ],
)
def test_gate_config_that_would_be_refused_fails_the_launch_before_anything_is_launched(
    flyte, client, gate_configs, expected
):
    result = _release_job().execute_in_process(
        resources={"flyte": flyte},
        raise_on_error=False,
        run_config={
            "ops": {
                "launch_flyte_execution": {
                    "config": {
                        "launch_plan": "approvals.approval_wf",
                        "inputs": {"version": 1},
                        "wait": False,
                    }
                },
                **{name: {"config": config} for name, config in gate_configs.items()},
            }
        },
    )

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "launch_flyte_execution"
    assert failure.step_failure_data.user_failure_data.description.startswith(expected)
    name = client.step_execution_name("dagster", result.run_id, "launch_flyte_execution")
    assert client.find_execution(name) is None, "the execution was launched"
