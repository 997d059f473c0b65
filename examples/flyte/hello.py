"""The smallest workflows: one trivial task (smoke tests and the per-task overhead figure), and
one with neither inputs nor outputs."""

from flytekit import task, workflow


@task
def say_hello(name: str) -> str:
    """Greets ``name``."""
    return f"hello {name}"


@workflow
def hello_wf(name: str = "world") -> str:
    """Returns ``"hello <name>"``."""
    return say_hello(name=name)


@task
def check_ready() -> None:
    """Does nothing: a health check whose only result is its phase."""


@workflow
def ping_wf() -> None:
    """Takes no inputs and returns no outputs (reading either gives an empty dict)."""
    check_ready()
