"""A conditional: one of two tasks runs depending on the input."""

from flytekit import conditional, task, workflow


@task
def describe_positive(x: int) -> str:
    """Taken when ``x > 0``."""
    return f"{x} is positive"


@task
def describe_non_positive(x: int) -> str:
    """Taken when ``x <= 0``."""
    return f"{x} is not positive"


@workflow
def branch_wf(x: int = 5) -> str:
    """Returns ``"<x> is positive"`` or ``"<x> is not positive"``."""
    return (
        conditional("sign")
        .if_(x > 0)
        .then(describe_positive(x=x))
        .else_()
        .then(describe_non_positive(x=x))
    )
