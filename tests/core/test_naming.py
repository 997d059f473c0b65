import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flyte_bridge.errors import FlyteInvalidInputError
from flyte_bridge.naming import (
    MAX_NAME_LENGTH,
    NAME_PATTERN,
    execution_name,
    validate_execution_name,
)
from flyte_bridge.reattach import MAX_GENERATIONS

ids = st.text(min_size=1, max_size=300)
step = st.tuples(ids, ids, ids, st.integers(min_value=-1, max_value=10_000))


@settings(max_examples=300, deadline=None)
@given(step, st.integers(min_value=0, max_value=50))
def test_every_generated_name_is_valid_for_flyteadmin(parts, generation):
    name = execution_name(*parts, generation=generation)

    assert NAME_PATTERN.match(name)
    assert len(name) <= MAX_NAME_LENGTH
    assert validate_execution_name(name) == name


@settings(max_examples=200, deadline=None)
@given(step, st.integers(min_value=0, max_value=9))
def test_names_fit_the_old_twenty_character_limit(parts, generation):
    name = execution_name(*parts, generation=generation, max_length=20)

    assert len(name) <= 20
    assert NAME_PATTERN.match(name)


@settings(max_examples=200, deadline=None)
@given(step, step, st.integers(min_value=0, max_value=MAX_GENERATIONS - 1))
def test_within_twenty_characters_every_generation_fits_and_steps_still_differ(
    first, second, generation
):
    name = execution_name(*first, generation=generation, max_length=20)

    assert len(name) <= 20
    assert NAME_PATTERN.match(name)
    if first != second:
        assert name != execution_name(*second, generation=generation, max_length=20)


def test_the_tasks_of_one_dag_get_different_twenty_character_names():
    tasks = ("extract_events", "extract_users", "load")

    names = {execution_name("daily_report", t, "manual__1", -1, max_length=20) for t in tasks}

    assert len(names) == len(tasks)
    assert all(name.startswith("daily-rep-") for name in names)


@settings(max_examples=200, deadline=None)
@given(step, step)
def test_different_steps_get_different_names(first, second):
    if first != second:
        assert execution_name(*first) != execution_name(*second)


def test_the_same_step_gets_the_same_name_in_every_process():
    parts = ("daily_report", "launch", "scheduled__2026-07-15T00:00:00+00:00", -1)

    assert execution_name(*parts) == execution_name(*parts)
    assert (
        execution_name(*parts) == "daily-report-launch-scheduled-2026-07-15t00-00-00-00-653ecad7e9"
    )


def test_each_generation_has_its_own_name():
    parts = ("dag", "task", "manual__1", -1)

    names = [execution_name(*parts, generation=g) for g in range(5)]

    assert len(set(names)) == 5
    assert names[2].endswith("-g2")


def test_tasks_sharing_a_long_prefix_do_not_collide():
    run = "scheduled__2022-07-15T00:00:00+00:00"
    prefix = "x" * 80

    assert execution_name("dag", prefix + "_model", run) != execution_name(
        "dag", prefix + "_metrics", run
    )


def test_a_leading_digit_is_prefixed_with_a_letter():
    assert execution_name("2024_etl", "load").startswith("f-2024-etl-load-")


def test_text_with_no_letters_or_digits_still_names_the_step():
    name = execution_name("___", "ü")

    assert NAME_PATTERN.match(name)
    assert name.startswith("f-")


def test_upper_case_and_underscores_are_folded():
    assert execution_name("Train_Model").startswith("train-model-")


def test_none_and_empty_text_are_different_parts():
    assert execution_name("dag", None) != execution_name("dag", "")


def test_map_indexes_name_different_executions():
    assert execution_name("d", "t", "r", 0) != execution_name("d", "t", "r", 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({}, "at least one part"), ({"generation": -1}, "0 or more")],
)
def test_bad_arguments_are_refused(kwargs, message):
    parts = () if "generation" not in kwargs else ("dag",)

    with pytest.raises(FlyteInvalidInputError, match=message):
        execution_name(*parts, **kwargs)


def test_a_limit_too_short_for_the_digest_is_refused():
    with pytest.raises(FlyteInvalidInputError, match="cannot hold a name"):
        execution_name("dag", max_length=11)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "non-empty"),
        ("nightly_etl_2024", "lower-case letters"),
        ("A1", "lower-case letters"),
        ("1abc", "start with a letter"),
        ("a" * 64, "64 characters; at most 63"),
    ],
)
def test_invalid_names_are_refused_before_any_call(name, message):
    with pytest.raises(FlyteInvalidInputError, match=message):
        validate_execution_name(name)


def test_boundary_names_pass():
    assert validate_execution_name("a" * 63) == "a" * 63
    assert validate_execution_name("a" * 20, max_length=20) == "a" * 20
    with pytest.raises(FlyteInvalidInputError, match="at most 20"):
        validate_execution_name("a" * 21, max_length=20)
