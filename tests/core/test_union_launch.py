"""C14: launching with union-typed inputs against the sandbox, which checks union literals the
way flyteadmin does (a variant type must be named and must fit the value)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flyte_bridge.errors import FlyteInvalidInputError

UNION_MODULE = textwrap.dedent(
    """
    from enum import Enum
    from typing import List, Union

    from flytekit import task, workflow


    class Color(Enum):
        RED = "red"
        GREEN = "green"


    @task
    def describe(a: Union[int, str], b: Union[List[str], str, Color]) -> str:
        return f"{type(a).__name__}:{a} {type(b).__name__}:{b}"


    @workflow
    def union_wf(a: Union[int, str], b: Union[List[str], str, Color]) -> str:
        return describe(a=a, b=b)
    """
)


@pytest.fixture(scope="module")
def union_workflow(flyte_sandbox, tmp_path_factory) -> str:
    """Registers ``union_inputs.union_wf`` in flytesnacks/development; returns its name."""
    work = tmp_path_factory.mktemp("union-inputs")
    (work / "union_inputs.py").write_text(UNION_MODULE)
    config = flyte_sandbox.write_flytekit_config(work / "config.yaml")
    pyflyte = Path(sys.executable).with_name("pyflyte")
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLYTE_")}
    subprocess.run(
        [str(pyflyte), "--config", str(config), "register", "--project", "flytesnacks",
         "--domain", "development", "--version", "union-v1", "union_inputs.py"],
        cwd=work, env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return "union_inputs.union_wf"


def test_c14_union_inputs_are_accepted_with_the_exact_variant_and_reach_the_task(
    client, union_workflow
):
    execution = client.launch(union_workflow, inputs={"a": "5", "b": "red"})

    finished = client.wait(execution, timeout=120, poll_interval=0.3)

    assert finished.is_successful, finished.error
    assert client.fetch_inputs(finished) == {"a": "5", "b": "red"}
    assert client.fetch_outputs(finished) == {"o0": "str:5 str:red"}


def test_c14_an_int_for_a_union_of_int_and_str_reaches_the_task_as_an_int(
    sandbox_client, union_workflow
):
    execution = sandbox_client.launch(union_workflow, inputs={"a": 5, "b": ["x", "y"]})

    finished = sandbox_client.wait(execution, timeout=120, poll_interval=0.3)

    assert sandbox_client.fetch_outputs(finished) == {"o0": "int:5 list:['x', 'y']"}


def test_c14_a_value_no_variant_fits_fails_before_any_rpc_creates_it(
    sandbox_client, union_workflow, flyte_sandbox
):
    before = flyte_sandbox.rpc_counts.snapshot()

    with pytest.raises(FlyteInvalidInputError, match="input 'a'"):
        sandbox_client.launch(union_workflow, inputs={"a": {"k": 1}, "b": "red"})

    assert "CreateExecution" not in flyte_sandbox.rpc_counts.since(before)
