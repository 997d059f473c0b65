"""A dynamic fan-out: count events per region and per day over a date range, then sum them.

``regional_counts`` is a dynamic workflow: when it runs it starts one ``daily_counts`` per
region. ``daily_counts`` is dynamic too (a dynamic inside a dynamic): it starts one
``count_events`` task per day of the range and sums them with ``total``. How many nodes run is
decided from the inputs at run time, so the sub-workflows exist only once the dynamic tasks ran.
A region without an event source makes its ``count_events`` tasks fail, and the failure travels
up through both dynamic nodes to the workflow.
"""

from datetime import datetime, timedelta

from flytekit import dynamic, task, workflow

EVENTS_PER_DAY = {"eu": 10, "us": 20, "apac": 5}


@task
def count_events(region: str, day: str) -> int:
    """Pretends to count a region's events on one day: the day of month times a regional rate."""
    if region not in EVENTS_PER_DAY:
        raise ValueError(f"no event source for region {region}")
    return EVENTS_PER_DAY[region] * int(day[-2:])


@task
def total(counts: list[int]) -> int:
    """Sums the daily counts."""
    return sum(counts)


@dynamic
def daily_counts(region: str, start: datetime, days: int) -> int:
    """One ``count_events`` node per day from ``start``, summed by one ``total`` node."""
    counts = [
        count_events(region=region, day=(start + timedelta(days=offset)).strftime("%Y-%m-%d"))
        for offset in range(days)
    ]
    return total(counts=counts)


@dynamic
def regional_counts(regions: list[str], start: datetime, days: int) -> list[int]:
    """One ``daily_counts`` (itself dynamic) per region."""
    return [daily_counts(region=region, start=start, days=days) for region in regions]


@task
def summarize(regions: list[str], counts: list[int]) -> str:
    """Formats ``region=count`` pairs."""
    return ", ".join(f"{region}={count}" for region, count in zip(regions, counts, strict=True))


@workflow
def fanout_wf(
    start: datetime = datetime(2026, 3, 1),
    days: int = 3,
    regions: list[str] = ["eu", "us"],  # noqa: B006 - flytekit reads the default, never mutates it
) -> str:
    """Returns ``"eu=60, us=120"`` for the defaults (days 1 to 3 of March at 10 and 20 a day)."""
    counts = regional_counts(regions=regions, start=start, days=days)
    return summarize(regions=regions, counts=counts)
