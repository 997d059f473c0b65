"""Fan-out with ``map_task``: score a batch of documents in parallel, parse records tolerantly.

``score_batch_wf`` maps ``score_document`` over a list of documents, at most two at a time, and
ranks the scores. ``tolerant_parse_wf`` maps ``parse_record`` with ``min_success_ratio=0.75``:
malformed records fail their own item only, their place in the result is ``None``, and the
workflow still succeeds as long as three out of four records parse.
"""

import os

from flytekit import map_task, task, workflow
from flytekit.exceptions.user import FlyteRecoverableException

DOCUMENTS = [
    "the quick brown fox jumps over the lazy dog",
    "flyte maps a task over a list",
    "retry: every item runs as its own task",
    "the the the the",
]
RECORDS = ["a=1", "b=2", "broken", "d=4"]


@task(retries=1)
def score_document(document: str) -> float:
    """The share of distinct words in the document, rounded to two places.

    A document starting with ``retry:`` fails its first attempt with a recoverable error and
    succeeds on the retry: each item of a map task is retried on its own.
    """
    attempt = int(os.environ.get("FLYTE_ATTEMPT_NUMBER", "0"))
    if document.startswith("retry:") and attempt == 0:
        raise FlyteRecoverableException(f"scoring {document!r} fails on its first attempt")
    words = document.split()
    return round(len(set(words)) / len(words), 2) if words else 0.0


@task
def rank(scores: list[float]) -> str:
    """Summarises the scores: how many, the best one and its position."""
    best = max(range(len(scores)), key=lambda index: scores[index])
    return f"{len(scores)} documents, best #{best} with {scores[best]}"


@workflow
def score_batch_wf(documents: list[str] = DOCUMENTS) -> str:
    """Returns ``"4 documents, best #2 with 1.0"`` for the default documents."""
    scores = map_task(score_document, concurrency=2)(document=documents)
    return rank(scores=scores)


@task
def parse_record(record: str) -> int:
    """Parses ``key=value`` into its integer value; anything else raises ``ValueError``."""
    key, separator, value = record.partition("=")
    if not key or not separator:
        raise ValueError(f"malformed record {record!r}")
    return int(value)


@task
def total(values: list[int | None]) -> int:
    """Adds the values that were parsed, skipping the ``None`` of failed items."""
    return sum(value for value in values if value is not None)


@workflow
def tolerant_parse_wf(
    records: list[str] = RECORDS,
) -> tuple[list[int | None], int]:
    """Returns ``([1, 2, None, 4], 7)`` for the defaults; FAILED when more than a quarter fail."""
    values = map_task(parse_record, min_success_ratio=0.75)(record=records)
    return values, total(values=values)
