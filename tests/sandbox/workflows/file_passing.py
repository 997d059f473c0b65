"""A FlyteFile and a FlyteDirectory returned by one task and read by the next.

``mkfile`` and ``mkdir`` write local data and return it, so flytekit uploads it under the raw
output prefix; ``readf`` and ``readd`` get those blob URIs as inputs and read them back.
"""

import os

from flytekit import task, workflow
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile


@task
def mkfile(text: str) -> FlyteFile:
    """A file holding ``text``."""
    path = os.path.join(os.getcwd(), "x.txt")
    with open(path, "w") as handle:
        handle.write(text)
    return FlyteFile(path)


@task
def readf(f: FlyteFile) -> str:
    """The text in ``f``."""
    with open(f) as handle:
        return handle.read()


@task
def mkdir(count: int) -> FlyteDirectory:
    """A directory of ``count`` files, ``part-<i>.txt`` holding ``<i>``, one in a subdirectory."""
    root = os.path.join(os.getcwd(), "parts")
    os.makedirs(os.path.join(root, "nested"), exist_ok=True)
    for i in range(count):
        sub = "nested" if i == 0 else ""
        with open(os.path.join(root, sub, f"part-{i}.txt"), "w") as handle:
            handle.write(str(i))
    return FlyteDirectory(root)


@task
def readd(d: FlyteDirectory) -> str:
    """The directory's files as ``<relative path>=<text>``, sorted, comma-separated."""
    local = d.download()
    found = []
    for folder, _, names in os.walk(local):
        for name in names:
            path = os.path.join(folder, name)
            with open(path) as handle:
                found.append(f"{os.path.relpath(path, local)}={handle.read()}")
    return ",".join(sorted(found))


@workflow
def file_pass_wf(text: str = "hello file", count: int = 3) -> tuple[str, str, FlyteFile]:
    """Reads back a file and a directory passed task to task; also returns the file itself."""
    f = mkfile(text=text)
    return readf(f=f), readd(d=mkdir(count=count)), f
