"""A workflow with a file input, for the upload path of ``pyflyte run --remote``."""

from flytekit import task, workflow
from flytekit.types.file import FlyteFile


@task
def count_bytes(f: FlyteFile) -> int:
    """Returns the size of the file in bytes."""
    with open(f, "rb") as handle:
        return len(handle.read())


@workflow
def file_size_wf(f: FlyteFile) -> int:
    """Returns the size of ``f``, which pyflyte uploads through the data proxy."""
    return count_bytes(f=f)
