"""Console links, execution metrics, launch plans and backfills through both clients."""

from __future__ import annotations

import datetime as dt

import pytest

from flyte_bridge.errors import FlyteInvalidInputError, FlyteNotFoundError

UTC = dt.timezone.utc


def test_console_url_of_an_execution_and_its_nodes(client, finished_runs):
    hello = client.sync(finished_runs["hello"])
    base = f"http://{client.config.endpoint}/console/projects/flytesnacks/domains/development"
    page = f"{base}/executions/{hello.id.name}"

    assert client.console_url(hello) == page
    assert client.console_url(hello.id) == page
    assert client.console_url(hello.id.name) == page
    assert client.console_url(f"flytesnacks/development/{hello.id.name}") == page
    assert client.console_url(hello.node_executions["n0"]).startswith(page)
    assert client.console_url(hello.node_executions["n0"].task_executions[0]).startswith(page)


def test_console_url_of_a_launch_plan_names_its_version(client, finished_runs):
    launch_plan = finished_runs["hello"].launch_plan

    url = client.console_url(launch_plan)

    assert url.endswith(f"/launch_plan/hello.hello_wf/version/{launch_plan.version}")


def test_execution_metrics_returns_a_span_tree_with_text_renderings(client, finished_runs):
    span = client.execution_metrics(finished_runs["hello"], depth=5)

    assert span.kind == "workflow"
    assert isinstance(span.explain(), str) and "TASK_RUNTIME" in span.explain()
    assert finished_runs["hello"].id.name in span.dump()


@pytest.mark.parametrize("depth", ["2", -1, 2**31, True, 1.5])
def test_execution_metrics_refuses_a_depth_that_is_no_level_count(client, finished_runs, depth):
    with pytest.raises(FlyteInvalidInputError, match=r"depth must be an int from 0 to 2\*\*31"):
        client.execution_metrics(finished_runs["hello"], depth=depth)


def test_backfill_refuses_a_dry_run_flag_that_is_no_bool(client, registered_examples):
    start = dt.datetime(2024, 1, 1, 6, tzinfo=UTC)
    with pytest.raises(FlyteInvalidInputError, match="dry_run must be True or False, got 'false'"):
        client.launch_backfill("daily_report", start, start, dry_run="false")


def test_backfill_dry_run_plans_every_tick_of_the_inclusive_window(client, registered_examples):
    start = dt.datetime(2024, 1, 1, 6, tzinfo=UTC)
    end = dt.datetime(2024, 1, 3, 6, tzinfo=UTC)

    result = client.launch_backfill("daily_report", start, end, dry_run=True)

    assert result.execution is None
    assert result.plan == (start, start + dt.timedelta(days=1), end)


def test_c21_backfill_runs_one_child_per_tick_with_its_kickoff_time(client, registered_examples):
    start = dt.datetime(2024, 2, 1, 6, tzinfo=UTC)
    end = dt.datetime(2024, 2, 2, 6, tzinfo=UTC)

    result = client.launch_backfill(
        "daily_report",
        start,
        end,
        parallel=True,
        labels={"orchestrator": "dagster"},
        annotations={"backfill-of": "daily-report"},
    )
    finished = client.wait(result.execution, timeout=180, poll_interval=0.5, sync_nodes=True)

    assert finished.is_successful
    assert finished.labels == {"orchestrator": "dagster"}
    assert dict(finished.proto.spec.annotations.values) == {"backfill-of": "daily-report"}
    children = [n.child_execution for n in finished.node_executions.values()]
    kickoffs = sorted(client.fetch_inputs(c)["kickoff_time"] for c in children)
    assert kickoffs == [start, end]


def test_backfill_inputs_reach_every_run_beside_its_kickoff_time(client, registered_examples):
    start = dt.datetime(2024, 3, 1, 6, tzinfo=UTC)
    end = dt.datetime(2024, 3, 2, 6, tzinfo=UTC)

    result = client.launch_backfill(
        "daily_report", start, end, parallel=True, inputs={"region": "us"}
    )
    finished = client.wait(result.execution, timeout=180, poll_interval=0.5, sync_nodes=True)

    assert finished.is_successful
    children = [n.child_execution for n in finished.node_executions.values()]
    runs = sorted(
        (client.fetch_inputs(c)["kickoff_time"], client.fetch_outputs(c)) for c in children
    )
    assert runs == [
        (start, {"o0": "report us 2024-03-01: 10 events"}),
        (end, {"o0": "report us 2024-03-02: 20 events"}),
    ]
    default = client.launch_backfill("daily_report", start, end, parallel=True, dry_run=True)
    assert default.version != result.version


def test_backfill_inputs_are_checked_and_never_set_the_kickoff_time(client, registered_examples):
    window = (dt.datetime(2024, 3, 1, tzinfo=UTC), dt.datetime(2024, 3, 2, tzinfo=UTC))

    with pytest.raises(FlyteInvalidInputError, match="'kickoff_time' is the schedule's kickoff"):
        client.launch_backfill(
            "daily_report", *window, inputs={"kickoff_time": dt.datetime(2024, 1, 1, tzinfo=UTC)}
        )
    with pytest.raises(FlyteInvalidInputError, match=r"unknown inputs zone \(expected:"):
        client.launch_backfill("daily_report", *window, inputs={"zone": "us"})
    with pytest.raises(FlyteInvalidInputError, match="input 'region'"):
        client.launch_backfill("daily_report", *window, inputs={"region": 3})


def test_backfill_node_retries_timeout_and_parallelism_reach_the_generated_workflow(
    client, registered_examples
):
    start = dt.datetime(2024, 1, 1, 6, tzinfo=UTC)
    window = (start, start + dt.timedelta(days=1))

    plain = client.launch_backfill("daily_report", *window, parallel=True, dry_run=True)
    tuned = client.launch_backfill(
        "daily_report",
        *window,
        parallel=True,
        dry_run=True,
        node_retries=2,
        node_timeout=dt.timedelta(minutes=10),
        max_parallelism=1,
    )

    nodes = tuned.backfill_plan.workflow.nodes
    assert [n.metadata.retries.retries for n in nodes] == [2, 2]
    assert [n.metadata.timeout.seconds for n in nodes] == [600, 600]
    assert tuned.backfill_plan.launch_plan_spec.max_parallelism == 1
    assert tuned.version != plain.version


def test_backfill_labels_must_be_a_mapping(client, registered_examples):
    with pytest.raises(FlyteInvalidInputError, match="labels must be a mapping"):
        client.launch_backfill(
            "daily_report",
            dt.datetime(2024, 1, 1, tzinfo=UTC),
            dt.datetime(2024, 1, 2, tzinfo=UTC),
            labels=["team"],
        )


def test_fetch_launch_plan_gives_its_interface_and_schedule(client, registered_examples):
    launch_plan = client.fetch_launch_plan("daily_report")

    assert launch_plan.id.name == "daily_report"
    assert sorted(launch_plan.closure.expected_inputs.parameters) == ["kickoff_time", "region"]
    schedule = launch_plan.spec.entity_metadata.schedule
    assert schedule.kickoff_time_input_arg == "kickoff_time"


def test_fetch_launch_plan_of_a_given_version_and_of_an_unknown_name(client, registered_examples):
    launch_plan = client.fetch_launch_plan(
        "flytesnacks/development/hello.hello_wf", version=registered_examples
    )

    assert launch_plan.id.name == "hello.hello_wf"
    assert list(launch_plan.closure.expected_inputs.parameters) == ["name"]
    with pytest.raises(FlyteNotFoundError, match="no_such_plan"):
        client.fetch_launch_plan("no_such_plan")


def test_backfill_of_a_launch_plan_without_schedule_is_refused(client, registered_examples):
    with pytest.raises(FlyteInvalidInputError, match="schedule"):
        client.launch_backfill(
            "hello.hello_wf",
            dt.datetime(2024, 1, 1, tzinfo=UTC),
            dt.datetime(2024, 1, 2, tzinfo=UTC),
            dry_run=True,
        )
