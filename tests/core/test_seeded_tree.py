"""sync() over a seeded tree with dynamic, array, sub-workflow and launch-plan children (C08).

The sandbox's executor does not run dynamic or array nodes the way propeller does, so this tree
is seeded: ``bench/tree_seed.py`` records the events propeller would send for a finished run (the
same seeding the sync benchmark uses, at a small size).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from flyte_bridge.config import ClientConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from tree_seed import MODULE, SeedingEngine, TreeShape, register  # noqa: E402

SHAPE = TreeShape(
    subworkflows=2, tasks=3, dynamics=1, dynamic_tasks=4, arrays=2, array_size=3, launch_plans=1
)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A sandbox holding a finished ``outer`` execution of SHAPE and one whose nodes have just
    been reached; yields (config, finished id, just started id)."""
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.sandbox.api import start_sandbox

    work = tmp_path_factory.mktemp("seeded-tree")
    engine = SeedingEngine(SHAPE)
    sandbox = start_sandbox(port=0, data_dir=work / "sandbox", engine=engine)
    engine.server = sandbox.server
    try:
        register(sandbox.write_flytekit_config(work / "config.yaml"), work, SHAPE, "seeded-v1")
        config = ClientConfig.for_sandbox(sandbox.endpoint, rpc_timeout=10.0)
        with FlyteClient(config) as client:
            finished = client.launch(f"{MODULE}.outer")
            engine.just_started = True
            started = client.launch(f"{MODULE}.outer")
        yield config, finished.id, started.id
    finally:
        sandbox.stop()


@pytest.fixture
def tree(make_client, seeded):
    """The seeded execution synced with this test's client kind (sync or async)."""
    config, execution_id, _ = seeded
    return make_client(config).sync(execution_id, sync_nodes=True)


def _by_spec(nodes, predicate):
    return [node for node in nodes.values() if predicate(node)]


def test_sync_reaches_every_node_execution_of_the_tree(tree):
    assert tree.is_successful
    assert sum(1 for _ in tree.iter_nodes()) == SHAPE.node_executions


def test_a_dynamic_node_lists_its_generator_attempt_and_its_generated_nodes(tree):
    (dynamic,) = _by_spec(tree.node_executions, lambda n: n.is_dynamic)

    assert dynamic.is_parent and dynamic.phase.name == "SUCCEEDED"
    assert [t.id.task_id.name for t in dynamic.task_executions] == [f"{MODULE}.fanout"]
    assert len(dynamic.children) == SHAPE.dynamic_tasks
    assert all(
        [t.phase.name for t in child.task_executions] == ["SUCCEEDED"]
        for child in dynamic.children.values()
    )


def test_c08_an_array_node_lists_its_attempt_with_one_subtask_per_item(tree):
    arrays = _by_spec(tree.node_executions, lambda n: n.is_array)

    assert len(arrays) == SHAPE.arrays
    for array in arrays:
        (attempt,) = array.task_executions
        assert [(s.index, s.phase.name) for s in attempt.subtasks] == [
            (index, "SUCCEEDED") for index in range(SHAPE.array_size)
        ]


def test_sub_workflow_and_launch_plan_children_are_synced_to_the_bottom(tree):
    subworkflows = _by_spec(tree.node_executions, lambda n: n.kind == "workflow")
    (launch_plan,) = _by_spec(tree.node_executions, lambda n: n.kind == "launch_plan")

    assert [len(n.children) for n in subworkflows] == [SHAPE.tasks] * SHAPE.subworkflows
    child = launch_plan.child_execution
    assert child is not None and child.mode == "CHILD_WORKFLOW" and child.is_successful
    assert len(child.node_executions) == SHAPE.tasks
    assert all(len(n.task_executions) == 1 for n in child.node_executions.values())


def test_sync_of_nodes_that_have_just_started_returns_them_as_they_are(make_client, seeded):
    config, _, started = seeded

    synced = make_client(config).sync(started, sync_nodes=True)

    nodes = synced.node_executions
    assert synced.phase.name == "RUNNING"
    assert len(nodes) == SHAPE.subworkflows + SHAPE.dynamics + SHAPE.arrays + SHAPE.launch_plans
    assert {n.phase.name for n in nodes.values()} == {"QUEUED", "RUNNING"}
    assert all(not n.children and n.child_execution is None for n in nodes.values())
    assert all(not n.is_done for n in nodes.values())
    kinds = sorted({n.kind for n in nodes.values()})
    assert kinds == ["array", "launch_plan", "task", "workflow"]
