"""The filter and sort builder writes admin's filter language and refuses what it cannot carry."""

from __future__ import annotations

import datetime as dt
import enum

import pytest
from flyteidl.admin import common_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from flyte_bridge.errors import FlyteInvalidInputError
from flyte_bridge.filters import MOST_RECENT_FIRST, Filter, Sort


class Phase(enum.IntEnum):
    RUNNING = 2
    SUCCEEDED = 4


def test_single_comparison_is_written_without_spaces():
    assert str(Filter.eq("phase", "SUCCEEDED")) == "eq(phase,SUCCEEDED)"


def test_filters_combined_with_and_are_joined_by_plus():
    combined = Filter.eq("launch_plan.name", "daily_etl") & Filter.gte("duration", 60)
    assert str(combined) == "eq(launch_plan.name,daily_etl)+gte(duration,60)"


def test_value_in_joins_values_with_semicolons():
    assert str(Filter.value_in("execution.name", ["a", "b"])) == "value_in(execution.name,a;b)"


def test_enum_members_are_written_by_name():
    assert str(Filter.value_in("phase", [Phase.RUNNING, Phase.SUCCEEDED])) == (
        "value_in(phase,RUNNING;SUCCEEDED)"
    )


def test_naive_datetime_is_written_as_rfc3339_utc():
    assert str(Filter.gte("execution_created_at", dt.datetime(2024, 1, 1))) == (
        "gte(execution_created_at,2024-01-01T00:00:00Z)"
    )


def test_aware_datetime_is_converted_to_utc():
    moment = dt.datetime(2024, 1, 1, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert str(Filter.lt("started_at", moment)) == "lt(started_at,2024-01-01T00:00:00Z)"


def test_timedelta_is_written_as_seconds():
    assert str(Filter.gt("duration", dt.timedelta(minutes=2))) == "gt(duration,120.0)"


@pytest.mark.parametrize("value", ["a+b", "a,b", "f(x)", "a;b"])
def test_value_with_a_character_admin_cannot_escape_is_refused(value):
    with pytest.raises(FlyteInvalidInputError, match="cannot escape"):
        Filter.eq("name", value)


def test_value_starting_with_a_space_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="starts with a space"):
        Filter.eq("name", " x")


def test_empty_value_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="empty"):
        Filter.eq("name", "")


def test_empty_value_list_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="list of values is empty"):
        Filter.value_in("execution.name", [])


def test_single_string_for_value_in_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="expected a list"):
        Filter.value_in("execution.name", "abc")


def test_unknown_entity_prefix_is_refused_listing_the_known_ones():
    with pytest.raises(FlyteInvalidInputError, match="unknown entity 'lp'.*launch_plan"):
        Filter.eq("lp.name", "x")


def test_field_that_is_not_a_column_name_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="expected a column name"):
        Filter.eq("Phase Name", "x")


def test_parse_reads_admin_strings_back():
    text = "eq(phase,SUCCEEDED)+value_in(execution.name,a;b)+gt(duration, 5)"
    assert (
        str(Filter.parse(text)) == "eq(phase,SUCCEEDED)+value_in(execution.name,a;b)+gt(duration,5)"
    )


def test_parse_refuses_an_unknown_function():
    with pytest.raises(FlyteInvalidInputError, match="unknown function 'like'"):
        Filter.parse("like(name,x)")


def test_parse_refuses_an_expression_with_three_arguments():
    with pytest.raises(FlyteInvalidInputError, match="expected fn"):
        Filter.parse("eq(a,b,c)")


def test_all_skips_none_and_accepts_strings():
    combined = Filter.all(None, "eq(phase,RUNNING)", Filter.eq("mode", 4))
    assert str(combined) == "eq(phase,RUNNING)+eq(mode,4)"


def test_empty_filter_is_false_and_writes_nothing():
    assert not Filter() and str(Filter.all()) == ""


def test_sort_desc_is_flyteidl_descending():
    proto = Sort.desc("created_at").to_proto()
    assert proto == common_pb2.Sort(key="created_at", direction=common_pb2.Sort.DESCENDING)


def test_sort_asc_is_flyteidl_ascending():
    assert Sort.asc("created_at").to_proto().direction == common_pb2.Sort.ASCENDING


def test_sort_parse_reads_direction_and_key():
    assert Sort.parse("asc(execution_created_at)") == Sort("execution_created_at", ascending=True)
    assert str(MOST_RECENT_FIRST) == "desc(created_at)"


def test_sort_key_with_entity_prefix_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="without an entity prefix"):
        Sort.desc("execution.created_at")


safe_values = st.text(
    alphabet=st.characters(blacklist_characters="+,();", blacklist_categories=("Cs", "Cc", "Zs")),
    min_size=1,
    max_size=20,
)
keys = st.sampled_from(["execution.name", "launch_plan.name", "duration", "mode"])


@settings(max_examples=200, deadline=None)
@given(keys, safe_values, st.lists(safe_values, min_size=1, max_size=5))
def test_written_filters_parse_back_to_the_same_filter(key, value, values):
    written = Filter.eq(key, value) & Filter.value_not_in(key, values)
    assert Filter.parse(str(written)) == written


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["SUCCEEDED", "running", "Failed", "ABORTED"]), min_size=1))
def test_written_phase_filters_parse_back_to_the_same_filter(phases):
    written = Filter.value_in("phase", phases)
    assert Filter.parse(str(written)) == written


def test_phase_values_are_upper_case_names_and_unknown_ones_are_refused():
    assert str(Filter.eq("phase", "running")) == "eq(phase,RUNNING)"
    assert str(Filter.value_in("execution.phase", ["succeeded", "FAILED"])) == (
        "value_in(execution.phase,SUCCEEDED;FAILED)"
    )
    with pytest.raises(FlyteInvalidInputError, match="expected a phase name such as SUCCEEDED"):
        Filter.parse("eq(phase,SUCESS)")


def test_a_sort_may_be_given_as_its_text():
    from flyte_bridge._requests import sort_proto

    assert sort_proto("asc(name)") == Sort.asc("name").to_proto()
    with pytest.raises(FlyteInvalidInputError, match="expected asc"):
        sort_proto("up(name)")
