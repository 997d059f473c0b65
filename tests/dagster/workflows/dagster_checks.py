"""Workflows of the Dagster tests: a scheduled launch plan whose ticks can fail on a chosen day,
and a datetime/duration input and gate, which Dagster config and YAML can only give as text."""

from datetime import datetime, timedelta

from flytekit import CronSchedule, LaunchPlan, task, wait_for_input, workflow


@task
def tick(kickoff: datetime, fail_day: int) -> str:
    """Returns ``"tick <YYYY-MM-DD>"``; raises on the day of month ``fail_day``."""
    if kickoff.day == fail_day:
        raise ValueError(f"tick {kickoff:%Y-%m-%d} fails on purpose")
    return f"tick {kickoff:%Y-%m-%d}"


@workflow
def tick_wf(kickoff: datetime, fail_day: int = 0) -> str:
    """One daily tick; fails when the kickoff's day of month is ``fail_day`` (0: never)."""
    return tick(kickoff=kickoff, fail_day=fail_day)


tick_lp = LaunchPlan.get_or_create(
    workflow=tick_wf,
    name="tick_lp",
    schedule=CronSchedule(schedule="0 0 * * *", kickoff_time_input_arg="kickoff"),
)


@task
def describe_window(start: datetime, length: timedelta) -> str:
    """Returns ``"<start ISO> for <seconds>s"``."""
    return f"{start.isoformat()} for {length.total_seconds():g}s"


@workflow
def window_wf(start: datetime, length: timedelta = timedelta(hours=1)) -> str:
    """A datetime and a duration input, described as text."""
    return describe_window(start=start, length=length)


@workflow
def datetime_gate_wf() -> str:
    """Waits for the datetime signal ``not_before`` and returns it described."""
    moment = wait_for_input("not_before", timeout=timedelta(minutes=10), expected_type=datetime)
    return describe_window(start=moment, length=timedelta(0))
