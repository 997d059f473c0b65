"""Map tasks that make the array node's rules observable: concurrency, min_successes, aborts."""

import functools
import os
import time
from pathlib import Path

from flytekit import map_task, task, workflow
from flytekit.core.array_node_map_task import ArrayNodeMapTask


@task
def hold_slot(index: int, marker_dir: str, seconds: float) -> int:
    """Marks itself running for ``seconds``; returns how many items it saw running at once.

    Every item creates a marker file in ``marker_dir`` while it runs and counts the markers
    present when it starts and before it stops, so no item can miss another that overlapped it.
    """
    markers = Path(marker_dir)
    markers.mkdir(parents=True, exist_ok=True)
    mine = markers / f"item-{index}-{os.getpid()}"
    mine.touch()
    seen = len(list(markers.iterdir()))
    time.sleep(seconds)
    seen = max(seen, len(list(markers.iterdir())))
    mine.unlink()
    return seen


@workflow
def overlap_wf(indexes: list[int], marker_dir: str, seconds: float) -> list[int]:
    """Runs ``hold_slot`` over ``indexes``, two at a time."""
    hold = functools.partial(hold_slot, marker_dir=marker_dir, seconds=seconds)
    return map_task(hold, concurrency=2)(index=indexes)


@task
def positive(x: int) -> int:
    """Returns ``x``; raises ``ValueError`` when it is not positive."""
    if x <= 0:
        raise ValueError(f"{x} is not positive")
    return x


@workflow
def at_least_two_wf(xs: list[int]) -> list[int]:
    """Succeeds when at least two items of ``xs`` are positive (``min_successes=2``).

    ``map_task(positive, min_successes=2)`` would not do: flytekit 1.16 then also sends its
    default ``min_success_ratio=1.0``, which wins, so the array node is built directly.
    """
    return ArrayNodeMapTask(positive, min_successes=2)(x=xs)


@workflow
def all_positive_wf(xs: list[int]) -> list[int]:
    """Succeeds only when every item is positive (the default: all items must succeed)."""
    return map_task(positive)(x=xs)
