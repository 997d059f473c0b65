"""Backfill planning: inclusive windows, every schedule kind, the kickoff input and the workflow."""

from __future__ import annotations

import datetime as dt

import pytest
from flyteidl.admin import launch_plan_pb2, schedule_pb2
from flyteidl.core import identifier_pb2, interface_pb2, literals_pb2, types_pb2
from flyteidl.core import workflow_pb2 as core_workflow_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from flyte_bridge.backfill import (
    cron_ticks,
    fixed_rate_ticks,
    kickoff_input,
    parse_iso_duration,
    plan_backfill,
    same_cron,
    schedule_ticks,
)
from flyte_bridge.errors import FlyteInvalidInputError

UTC = dt.timezone.utc
DATETIME = types_pb2.LiteralType(simple=types_pb2.DATETIME)
INTEGER = types_pb2.LiteralType(simple=types_pb2.INTEGER)


def _int(value: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value))
    )


def at(day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, day, hour, minute, tzinfo=UTC)


def parameter(literal_type, default: literals_pb2.Literal | None = None) -> interface_pb2.Parameter:
    param = interface_pb2.Parameter(
        var=interface_pb2.Variable(type=literal_type), required=default is None
    )
    if default is not None:
        param.default.CopyFrom(default)
    return param


def launch_plan(
    schedule: schedule_pb2.Schedule | None = None,
    inputs: dict[str, interface_pb2.Parameter] | None = None,
    fixed: dict[str, literals_pb2.Literal] | None = None,
    version: str = "v1",
) -> launch_plan_pb2.LaunchPlan:
    spec = launch_plan_pb2.LaunchPlanSpec(
        default_inputs=interface_pb2.ParameterMap(parameters=inputs or {}),
        fixed_inputs=literals_pb2.LiteralMap(literals=fixed or {}),
    )
    if schedule is not None:
        spec.entity_metadata.schedule.CopyFrom(schedule)
    lp_id = identifier_pb2.Identifier(
        resource_type=identifier_pb2.LAUNCH_PLAN,
        project="flytesnacks",
        domain="development",
        name="daily_etl",
        version=version,
    )
    return launch_plan_pb2.LaunchPlan(id=lp_id, spec=spec)


def daily(kickoff: str = "") -> schedule_pb2.Schedule:
    return schedule_pb2.Schedule(
        cron_schedule=schedule_pb2.CronSchedule(schedule="0 0 * * *"),
        kickoff_time_input_arg=kickoff,
    )


# ------------------------------------------------------------------------------------ ticks


def test_window_includes_ticks_at_both_ends():
    assert cron_ticks("0 0 * * *", at(1), at(3)) == [at(1), at(2), at(3)]


def test_window_ending_between_ticks_stops_at_the_last_tick_before_it():
    assert cron_ticks("0 0 * * *", at(1, 0, 1), at(3, 23, 59)) == [at(2), at(3)]


def test_single_instant_window_on_a_tick_holds_that_tick():
    assert cron_ticks("*/5 * * * *", at(1, 0, 5), at(1, 0, 5)) == [at(1, 0, 5)]


def test_naive_and_other_zone_datetimes_are_read_as_utc_instants():
    plus_two = dt.timezone(dt.timedelta(hours=2))
    ticks = cron_ticks(
        "0 0 * * *", dt.datetime(2024, 1, 1, 2, 0, tzinfo=plus_two), dt.datetime(2024, 1, 2)
    )
    assert ticks == [at(1), at(2)]
    assert all(tick.tzinfo is UTC for tick in ticks)


def test_cron_offset_shifts_every_tick():
    schedule = schedule_pb2.Schedule(
        cron_schedule=schedule_pb2.CronSchedule(schedule="0 0 * * *", offset="PT1H30M")
    )
    assert schedule_ticks(schedule, at(1), at(3)) == [at(1, 1, 30), at(2, 1, 30)]


def test_negative_offset_can_bring_a_tick_into_the_window():
    schedule = schedule_pb2.Schedule(
        cron_schedule=schedule_pb2.CronSchedule(schedule="0 0 * * *", offset="-P1D")
    )
    assert schedule_ticks(schedule, at(1), at(2)) == [at(1), at(2)]


def test_cron_alias_is_accepted():
    assert cron_ticks("@hourly", at(1), at(1, 2)) == [at(1, 0), at(1, 1), at(1, 2)]


def test_legacy_cron_expression_in_aws_form_is_read():
    schedule = schedule_pb2.Schedule(cron_expression="0 10 * * ? *")
    assert schedule_ticks(schedule, at(1), at(2, 12)) == [at(1, 10), at(2, 10)]


def test_legacy_aws_day_of_week_numbers_start_at_sunday_one():
    schedule = schedule_pb2.Schedule(cron_expression="0 0 ? * 2 *")
    assert schedule_ticks(schedule, at(1), at(14)) == [at(1), at(8)]
    assert at(1).weekday() == 0


def test_legacy_expression_with_a_year_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="year"):
        schedule_ticks(schedule_pb2.Schedule(cron_expression="0 0 * * ? 2024"), at(1), at(2))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("@daily", "0 0 * * *"),
        (" 0  6 * * * ", "0 6 * * *"),
        ("0 0 * * 7", "0 0 * * sun"),
        ("*/15 * * * *", "0,15,30,45 * * * *"),
        ("0 10 ? * 2 *", "0 10 * * 1"),
    ],
)
def test_crons_that_name_the_same_times_are_the_same(first, second):
    assert same_cron(first, second) and same_cron(second, first)


@pytest.mark.parametrize(
    ("first", "second"),
    [("0 0 * * *", "0 6 * * *"), ("@daily", "@hourly"), ("not a cron", "0 0 * * *")],
)
def test_crons_that_name_other_times_differ(first, second):
    assert not same_cron(first, second)


def test_unreadable_crons_are_compared_as_text_without_spaces():
    assert same_cron("not  a cron", "not a cron")


def test_fixed_rate_ticks_start_at_the_window_start():
    schedule = schedule_pb2.Schedule(rate=schedule_pb2.FixedRate(value=6, unit=schedule_pb2.HOUR))
    assert schedule_ticks(schedule, at(1), at(2)) == [
        at(1, 0),
        at(1, 6),
        at(1, 12),
        at(1, 18),
        at(2, 0),
    ]


def test_fixed_rate_ticks_follow_an_anchor_before_the_window():
    ticks = fixed_rate_ticks(dt.timedelta(minutes=20), at(1, 1), at(1, 2), anchor=at(1, 0, 10))
    assert ticks == [at(1, 1, 10), at(1, 1, 30), at(1, 1, 50)]


def test_fixed_rate_ticks_follow_an_anchor_after_the_window_start():
    ticks = fixed_rate_ticks(dt.timedelta(days=1), at(1), at(3), anchor=at(5, 12))
    assert ticks == [at(1, 12), at(2, 12)]


def test_zero_fixed_rate_is_refused():
    schedule = schedule_pb2.Schedule(rate=schedule_pb2.FixedRate(value=0, unit=schedule_pb2.DAY))
    with pytest.raises(FlyteInvalidInputError, match="positive"):
        schedule_ticks(schedule, at(1), at(2))


def test_reversed_window_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="starts after it ends"):
        cron_ticks("0 0 * * *", at(3), at(1))


def test_invalid_cron_expression_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="5-field cron"):
        cron_ticks("every day", at(1), at(2))


def test_too_many_ticks_are_refused():
    with pytest.raises(FlyteInvalidInputError, match="more than 10 schedule ticks"):
        cron_ticks("* * * * *", at(1), at(2), max_ticks=10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT1H", dt.timedelta(hours=1)),
        ("P1DT30M", dt.timedelta(days=1, minutes=30)),
        ("-PT15S", dt.timedelta(seconds=-15)),
        ("P2W", dt.timedelta(weeks=2)),
        ("PT0.5S", dt.timedelta(milliseconds=500)),
    ],
)
def test_iso_durations_are_parsed(text, expected):
    assert parse_iso_duration(text) == expected


@pytest.mark.parametrize("text", ["P1M", "P1Y", "1h", "P", "PT"])
def test_iso_durations_with_varying_length_or_other_shapes_are_refused(text):
    with pytest.raises(FlyteInvalidInputError, match="ISO 8601"):
        parse_iso_duration(text)


# ------------------------------------------------------------------------------------ kickoff


def test_c21_kickoff_input_named_by_the_schedule_gets_each_tick():
    plan = plan_backfill(
        launch_plan(daily("kickoff_time"), {"kickoff_time": parameter(DATETIME)}), at(1), at(3)
    )
    stamps = [
        node.inputs[0].binding.scalar.primitive.datetime.seconds for node in plan.workflow.nodes
    ]
    assert [node.inputs[0].var for node in plan.workflow.nodes] == ["kickoff_time"] * 3
    assert stamps == [int(at(day).timestamp()) for day in (1, 2, 3)]


def test_c21_schedule_without_kickoff_input_binds_no_input():
    plan = plan_backfill(launch_plan(daily(), {"x": parameter(INTEGER, _int(1))}), at(1), at(2))
    assert all(len(node.inputs) == 0 for node in plan.workflow.nodes)


def test_c21_kickoff_input_missing_from_the_interface_is_refused_before_anything_runs():
    with pytest.raises(FlyteInvalidInputError, match="'kickoff_time' is not an input.*run_date"):
        plan_backfill(
            launch_plan(daily("kickoff_time"), {"run_date": parameter(DATETIME)}), at(1), at(2)
        )


def test_c21_fixed_kickoff_input_is_refused():
    lp = launch_plan(daily("kickoff_time"), fixed={"kickoff_time": _int(1)})
    with pytest.raises(FlyteInvalidInputError, match="fixed input"):
        kickoff_input(lp)


def test_c21_kickoff_input_that_is_not_a_datetime_is_refused():
    lp = launch_plan(daily("kickoff_time"), {"kickoff_time": parameter(INTEGER)})
    with pytest.raises(FlyteInvalidInputError, match="does not take a datetime"):
        kickoff_input(lp)


def test_optional_datetime_kickoff_input_gets_a_tagged_union():
    optional = types_pb2.LiteralType(
        union_type=types_pb2.UnionType(
            variants=[
                types_pb2.LiteralType(
                    simple=types_pb2.DATETIME, structure=types_pb2.TypeStructure(tag="datetime")
                ),
                types_pb2.LiteralType(
                    simple=types_pb2.NONE, structure=types_pb2.TypeStructure(tag="none")
                ),
            ]
        )
    )
    plan = plan_backfill(launch_plan(daily("t"), {"t": parameter(optional)}), at(1), at(1))
    union = plan.workflow.nodes[0].inputs[0].binding.scalar.union
    assert union.type.structure.tag == "datetime"
    assert union.value.scalar.primitive.datetime.seconds == int(at(1).timestamp())


def test_required_input_without_default_is_refused_naming_it():
    lp = launch_plan(daily("k"), {"k": parameter(DATETIME), "region": parameter(INTEGER)})
    with pytest.raises(
        FlyteInvalidInputError, match=r"required inputs without defaults \(region\)"
    ):
        plan_backfill(lp, at(1), at(2))


def test_required_input_given_to_the_backfill_is_bound_on_every_node():
    lp = launch_plan(daily("k"), {"k": parameter(DATETIME), "region": parameter(INTEGER)})

    plan = plan_backfill(lp, at(1), at(3), inputs={"region": _int(7)})

    for node in plan.workflow.nodes:
        bound = {binding.var: binding.binding for binding in node.inputs}
        assert sorted(bound) == ["k", "region"]
        assert bound["region"].scalar.primitive.integer == 7


def test_list_and_map_inputs_are_bound_item_by_item():
    int_list = types_pb2.LiteralType(collection_type=INTEGER)
    int_map = types_pb2.LiteralType(map_value_type=INTEGER)
    lp = launch_plan(
        daily(), {"xs": parameter(int_list, _int(0)), "m": parameter(int_map, _int(0))}
    )
    xs = literals_pb2.Literal(
        collection=literals_pb2.LiteralCollection(literals=[_int(1), _int(2)])
    )
    m = literals_pb2.Literal(map=literals_pb2.LiteralMap(literals={"a": _int(3)}))

    (node,) = plan_backfill(lp, at(1), at(1), inputs={"xs": xs, "m": m}).workflow.nodes

    bound = {binding.var: binding.binding for binding in node.inputs}
    items = bound["xs"].collection.bindings
    assert [item.scalar.primitive.integer for item in items] == [1, 2]
    assert bound["m"].map.bindings["a"].scalar.primitive.integer == 3


def test_the_kickoff_input_cannot_be_given_to_the_backfill():
    lp = launch_plan(daily("kickoff_time"), {"kickoff_time": parameter(DATETIME)})
    with pytest.raises(FlyteInvalidInputError, match="'kickoff_time' is the schedule's kickoff"):
        plan_backfill(lp, at(1), at(2), inputs={"kickoff_time": _int(1)})


def test_unknown_fixed_and_unconverted_backfill_inputs_are_refused():
    lp = launch_plan(daily(), {"x": parameter(INTEGER, _int(1))}, fixed={"f": _int(2)})
    with pytest.raises(FlyteInvalidInputError, match=r"unknown inputs y \(expected: x\)"):
        plan_backfill(lp, at(1), at(2), inputs={"y": _int(1)})
    with pytest.raises(FlyteInvalidInputError, match="fixed inputs .* cannot be overridden: f"):
        plan_backfill(lp, at(1), at(2), inputs={"f": _int(1)})
    with pytest.raises(FlyteInvalidInputError, match="expected a flyteidl Literal"):
        plan_backfill(lp, at(1), at(2), inputs={"x": 5})


def test_a_backfill_without_inputs_keeps_the_version_it_had_before_inputs_existed():
    plan = plan_backfill(launch_plan(daily()), at(1), at(3))
    assert plan_backfill(launch_plan(daily()), at(1), at(3), inputs={}).version == plan.version


# ------------------------------------------------------------------------------------ workflow


def test_serial_backfill_chains_each_node_after_the_previous_one():
    plan = plan_backfill(launch_plan(daily()), at(1), at(3))
    assert [node.id for node in plan.workflow.nodes] == ["n0", "n1", "n2"]
    assert [list(node.upstream_node_ids) for node in plan.workflow.nodes] == [[], ["n0"], ["n1"]]


def test_parallel_backfill_has_no_dependencies():
    plan = plan_backfill(launch_plan(daily()), at(1), at(3), parallel=True, max_parallelism=2)
    assert all(not node.upstream_node_ids for node in plan.workflow.nodes)
    assert plan.launch_plan_spec.max_parallelism == 2


def test_nodes_launch_the_versioned_launch_plan_and_are_named_by_tick():
    lp = launch_plan(daily())
    plan = plan_backfill(lp, at(1), at(2), node_retries=2, node_timeout=dt.timedelta(minutes=5))
    node = plan.workflow.nodes[1]
    assert node.workflow_node.launchplan_ref == lp.id
    assert node.metadata.name == "b-2024-01-02T00:00:00Z"
    assert node.metadata.retries.retries == 2 and node.metadata.timeout.seconds == 300


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("fail_fast", core_workflow_pb2.WorkflowMetadata.FAIL_IMMEDIATELY),
        ("continue", core_workflow_pb2.WorkflowMetadata.FAIL_AFTER_EXECUTABLE_NODES_COMPLETE),
    ],
)
def test_failure_policy_sets_the_workflow_on_failure(policy, expected):
    plan = plan_backfill(launch_plan(daily()), at(1), at(2), failure_policy=policy)
    assert plan.workflow.metadata.on_failure == expected


def test_unknown_failure_policy_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="fail_fast, continue"):
        plan_backfill(launch_plan(daily()), at(1), at(2), failure_policy="retry")


def test_generated_ids_share_name_and_version_in_the_target_project():
    plan = plan_backfill(launch_plan(daily()), at(1), at(2), project="ops", domain="production")
    workflow_id = plan.workflow_create_request().id
    launch_plan_id = plan.launch_plan_create_request().id
    assert (workflow_id.project, workflow_id.domain, workflow_id.name) == (
        "ops",
        "production",
        "backfill-daily_etl",
    )
    assert workflow_id.resource_type == identifier_pb2.WORKFLOW
    assert launch_plan_id.resource_type == identifier_pb2.LAUNCH_PLAN
    assert launch_plan_id.name == workflow_id.name and launch_plan_id.version == plan.version
    assert plan.launch_plan_spec.workflow_id == workflow_id
    assert plan.workflow_create_request().spec.template == plan.workflow


def test_launch_plan_without_schedule_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="only launch plans with a schedule"):
        plan_backfill(launch_plan(None), at(1), at(2))


def test_window_without_ticks_is_a_typed_error_not_stop_iteration():
    with pytest.raises(FlyteInvalidInputError, match="no schedule tick falls in the window"):
        plan_backfill(launch_plan(daily()), at(1, 1), at(1, 23))


def test_same_settings_give_the_same_version():
    first = plan_backfill(launch_plan(daily()), at(1), at(3))
    second = plan_backfill(launch_plan(daily()), at(1), at(3))
    assert first.version == second.version and first.version.startswith("bf-")


@pytest.mark.parametrize(
    "change",
    [
        {"end": at(4)},
        {"start": at(2)},
        {"parallel": True},
        {"failure_policy": "continue"},
        {"project": "other"},
        {"domain": "production"},
        {"node_retries": 1},
        {"launch_plan_version": "v2"},
        {"inputs": {"x": _int(2)}},
    ],
)
def test_every_setting_changes_the_version(change):
    def version(start=None, end=None, launch_plan_version="v1", **settings):
        lp = launch_plan(daily(), {"x": parameter(INTEGER, _int(1))}, version=launch_plan_version)
        return plan_backfill(lp, start or at(1), end or at(3), **settings).version

    assert version(**change) != version()


def test_given_version_is_used():
    assert plan_backfill(
        launch_plan(daily()), at(1), at(2), version="mine"
    ).workflow.id.version == ("mine")


def test_backfill_result_of_a_dry_run_carries_the_ticks_and_no_execution():
    from flyte_bridge.backfill import BackfillResult

    plan = plan_backfill(launch_plan(daily()), at(1), at(2))
    result = BackfillResult.from_plan(plan)
    assert result.plan == (at(1), at(2)) and result.execution is None
    assert result.version == plan.version


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=600),
    st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2030, 1, 1)),
    st.integers(min_value=0, max_value=20_000),
    st.integers(min_value=-1000, max_value=1000),
)
def test_fixed_rate_ticks_are_the_rate_apart_and_inside_the_window(minutes, start, span, shift):
    every = dt.timedelta(minutes=minutes)
    start = start.replace(tzinfo=UTC)
    end = start + dt.timedelta(minutes=span)
    anchor = start + dt.timedelta(minutes=shift)
    ticks = fixed_rate_ticks(every, start, end, anchor=anchor, max_ticks=100_000)
    assert all(start <= tick <= end for tick in ticks)
    assert all(later - earlier == every for earlier, later in zip(ticks, ticks[1:], strict=False))
    assert all((tick - anchor) % every == dt.timedelta(0) for tick in ticks)
    assert not ticks or ticks[0] - every < start
    assert not ticks or ticks[-1] + every > end


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([1, 5, 15, 30]), st.integers(min_value=0, max_value=3000))
def test_minute_cron_ticks_count_both_ends(step, span):
    start = at(1)
    end = start + dt.timedelta(minutes=span)
    ticks = cron_ticks(f"*/{step} * * * *", start, end, max_ticks=10_000)
    assert ticks[0] == start
    assert len(ticks) == span_ticks(span, step)
    assert len(set(ticks)) == len(ticks) and ticks == sorted(ticks)


def span_ticks(span: int, step: int) -> int:
    """Ticks of ``*/step`` from an hour's start over ``span`` minutes, both ends included."""
    return sum(1 for minute in range(span + 1) if minute % 60 % step == 0)


def test_a_bare_end_date_is_the_end_of_that_day_and_a_bare_start_its_first_instant():
    from flyte_bridge.backfill import parse_window_bound

    assert parse_window_bound("2024-01-07", end=True) == dt.datetime(
        2024, 1, 7, 23, 59, 59, 999999, tzinfo=UTC
    )
    assert parse_window_bound("2024-01-01", end=False) == dt.datetime(2024, 1, 1, tzinfo=UTC)


def test_window_bounds_with_a_time_are_taken_as_given_in_utc():
    from flyte_bridge.backfill import parse_window_bound

    assert parse_window_bound("2024-01-07T06:00", end=True) == dt.datetime(
        2024, 1, 7, 6, tzinfo=UTC
    )
    assert parse_window_bound("2024-01-07T08:00+02:00", end=True) == dt.datetime(
        2024, 1, 7, 6, tzinfo=UTC
    )
    assert parse_window_bound("2024-01-07T06:00Z", end=False) == dt.datetime(
        2024, 1, 7, 6, tzinfo=UTC
    )


def test_a_window_bound_that_is_not_iso_8601_is_refused_naming_it():
    from flyte_bridge.backfill import parse_window_bound

    with pytest.raises(FlyteInvalidInputError, match="end '7 Jan' is not an ISO 8601"):
        parse_window_bound("7 Jan", end=True)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({"parallel": "no"}, "parallel must be True or False, got 'no'"),
        ({"node_retries": "1"}, "node_retries must be an int >= 0, got '1'"),
        ({"node_retries": -1}, "node_retries must be an int >= 0, got -1"),
        ({"max_parallelism": -1}, "max_parallelism must be an int >= 0, got -1"),
        ({"max_parallelism": True}, "max_parallelism must be an int >= 0, got True"),
        ({"max_ticks": 0}, "max_ticks must be an int >= 1, got 0"),
        ({"node_timeout": dt.timedelta(seconds=-5)}, "node_timeout must be a positive"),
        ({"node_timeout": 30}, "node_timeout must be a positive datetime.timedelta or None"),
    ],
)
def test_bad_settings_are_refused_saying_what_they_take(setting, expected):
    lp = launch_plan(daily("kickoff_time"), {"kickoff_time": parameter(DATETIME)})
    with pytest.raises(FlyteInvalidInputError, match=expected.replace("(", r"\(")):
        plan_backfill(lp, at(1), at(2), **setting)
