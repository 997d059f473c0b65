"""A workflow whose data grows with ``size``: for the sandbox's inline limit and literal offloading.

``big_parts`` returns ``["x" * size, "tail"]``; ``join`` gets that whole list and returns it as one
string; two ``text_length`` nodes read single items through attribute paths (``parts[0]``,
``parts[1]``), so with offloading on the engine has to read the offloaded list to index it.
"""

from flytekit import task, workflow


@task
def big_parts(size: int) -> list[str]:
    """A list whose first item is ``size`` characters long."""
    return ["x" * size, "tail"]


@task
def join(parts: list[str]) -> str:
    """The items of ``parts`` as one string."""
    return "".join(parts)


@task
def text_length(text: str) -> int:
    """The number of characters in ``text``."""
    return len(text)


@workflow
def large_data_wf(size: int) -> tuple[str, int, int]:
    """Returns the joined text, and the lengths of the first and the last part."""
    parts = big_parts(size=size)
    return join(parts=parts), text_length(text=parts[0]), text_length(text=parts[1])
