"""The smallest workflow, one trivial task: smoke tests and the per-task overhead figure."""

from flytekit import task, workflow


@task
def say_hello(name: str) -> str:
    """Greets ``name``."""
    return f"hello {name}"


@workflow
def hello_wf(name: str = "world") -> str:
    """Returns ``"hello <name>"``."""
    return say_hello(name=name)
