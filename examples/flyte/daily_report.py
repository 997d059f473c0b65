"""A daily report, scheduled by cron, that knows which day it reports on from its kickoff time."""

from dataclasses import dataclass
from datetime import datetime

from flytekit import CronSchedule, LaunchPlan, task, workflow


@dataclass
class Metrics:
    """What the report is built from."""

    region: str
    day: str
    total: int


@task
def collect_metrics(kickoff_time: datetime, region: str) -> Metrics:
    """Pretends to count the day's events: a value derived from the date, so it is reproducible."""
    day = kickoff_time.strftime("%Y-%m-%d")
    return Metrics(region=region, day=day, total=kickoff_time.day * 10)


@task
def render_report(day: str, region: str, total: int) -> str:
    """Formats the report line."""
    return f"report {region} {day}: {total} events"


@workflow
def daily_report_wf(kickoff_time: datetime, region: str = "eu") -> str:
    """Returns ``"report <region> <YYYY-MM-DD>: <day of month * 10> events"``."""
    metrics = collect_metrics(kickoff_time=kickoff_time, region=region)
    return render_report(day=metrics.day, region=metrics.region, total=metrics.total)


daily_report = LaunchPlan.get_or_create(
    workflow=daily_report_wf,
    name="daily_report",
    schedule=CronSchedule(schedule="0 6 * * *", kickoff_time_input_arg="kickoff_time"),
    default_inputs={"region": "eu"},
)
