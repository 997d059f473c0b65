"""Dynamic nodes end to end: ``examples/flyte/dynamic_fanout.py`` run with ``pyflyte run --remote``
and read back with flytekit's FlyteRemote, the core client and the admin API, as on a cluster.

``fanout_wf`` runs the dynamic ``regional_counts`` (node ``n0``), which starts one dynamic
``daily_counts`` per region (``n0-0-dn0`` for eu, ``n0-0-dn1`` for us), each starting one
``count_events`` per day and a ``total``.
"""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from flyte_examples import EXAMPLES, REPO, remote_for, unique_name
from flyteidl.admin import node_execution_pb2, task_execution_pb2
from flyteidl.core import catalog_pb2, execution_pb2, identifier_pb2
from flytekit.models.core.execution import NodeExecutionPhase
from flytekit.models.core.execution import WorkflowExecutionPhase as Phase
from test_pyflyte_run import run_remote

pytestmark = pytest.mark.slow

NodePhase = execution_pb2.NodeExecution.Phase


def run_and_wait(config, module, workflow: str, *inputs: str) -> tuple[str, object]:
    """Runs ``module``'s ``workflow`` with ``pyflyte run --remote --wait``; its name and result."""
    name = unique_name("dyn")
    return name, run_remote(config, str(module), workflow, list(inputs), wait=True, name=name)


def node_id(name: str, node: str) -> identifier_pb2.NodeExecutionIdentifier:
    return identifier_pb2.NodeExecutionIdentifier(
        node_id=node,
        execution_id=identifier_pb2.WorkflowExecutionIdentifier(
            project="flytesnacks", domain="development", name=name
        ),
    )


def children(admin, name: str, parent: str) -> dict[str, object]:
    listed = admin.ListNodeExecutions(
        node_execution_pb2.NodeExecutionListRequest(
            workflow_execution_id=node_id(name, parent).execution_id,
            unique_parent_id=parent,
            limit=100,
        )
    ).node_executions
    return {node.id.node_id: node for node in listed}


@pytest.fixture(scope="module")
def remote(flyte_sandbox_config):
    return remote_for(flyte_sandbox_config)


@pytest.fixture(scope="module")
def fanout(flyte_sandbox_config) -> str:
    """The name of a finished ``fanout_wf`` run with its defaults (eu and us, 3 days)."""
    name, result = run_and_wait(flyte_sandbox_config, EXAMPLES / "dynamic_fanout.py", "fanout_wf")
    assert result.returncode == 0, result.stdout + result.stderr
    return name


@pytest.fixture(scope="module")
def failed_fanout(flyte_sandbox_config) -> str:
    """The name of a ``fanout_wf`` run over a region without an event source (it fails)."""
    name, result = run_and_wait(
        flyte_sandbox_config,
        EXAMPLES / "dynamic_fanout.py",
        "fanout_wf",
        "--regions",
        '["eu", "mars"]',
    )
    assert result.returncode != 0
    return name


def test_pyflyte_run_remote_runs_the_dynamic_fan_out_to_its_outputs(remote, fanout):
    execution = remote.fetch_execution(name=fanout)

    assert execution.closure.phase == Phase.SUCCEEDED
    assert execution.outputs["o0"] == "eu=60, us=120"


def test_dynamic_node_is_a_dynamic_parent_with_the_spec_outputs(admin, fanout):
    node = admin.GetNodeExecution(
        node_execution_pb2.NodeExecutionGetRequest(id=node_id(fanout, "n0"))
    )
    data = admin.GetNodeExecutionData(
        node_execution_pb2.NodeExecutionGetDataRequest(id=node_id(fanout, "n0"))
    )

    assert node.closure.phase == NodePhase.SUCCEEDED
    assert node.metadata.is_dynamic and node.metadata.is_parent_node
    assert node.closure.dynamic_job_spec_uri.endswith("/n0/data/0/futures.pb")
    counts = data.full_outputs.literals["o0"].collection.literals
    assert [item.scalar.primitive.integer for item in counts] == [60, 120]
    assert data.dynamic_workflow.id.name == "dynamic_n0"
    assert data.dynamic_workflow.dynamic_job_spec_uri == node.closure.dynamic_job_spec_uri


def test_dynamic_parent_task_ran_once_and_succeeded(admin, fanout):
    attempts = admin.ListTaskExecutions(
        task_execution_pb2.TaskExecutionListRequest(
            node_execution_id=node_id(fanout, "n0"), limit=10
        )
    ).task_executions

    assert [(a.id.retry_attempt, a.closure.phase) for a in attempts] == [
        (0, execution_pb2.TaskExecution.SUCCEEDED)
    ]


def test_dynamic_children_are_listed_under_the_dynamic_node(admin, fanout):
    listed = children(admin, fanout, "n0")

    assert set(listed) == {"n0-0-start-node", "n0-0-dn0", "n0-0-dn1", "n0-0-end-node"}
    eu = listed["n0-0-dn0"]
    assert (eu.metadata.spec_node_id, eu.metadata.retry_group) == ("dn0", "0")
    assert eu.metadata.is_dynamic and eu.closure.phase == NodePhase.SUCCEEDED


def test_nested_dynamic_children_are_listed_under_their_own_dynamic_node(admin, fanout):
    listed = children(admin, fanout, "n0-0-dn1")

    days = {node_id for node_id, node in listed.items() if node.metadata.spec_node_id != "dn3"}
    assert {"n0-0-dn1-0-dn0", "n0-0-dn1-0-dn1", "n0-0-dn1-0-dn2"} <= days
    assert listed["n0-0-dn1-0-dn3"].metadata.spec_node_id == "dn3"
    assert all(node.closure.phase == NodePhase.SUCCEEDED for node in listed.values())


def test_a_nested_dynamic_lists_its_start_node_under_propellers_hashed_id(admin, fanout):
    # "n0-0-dn0-0-start-node" is over 20 characters, so propeller (and so admin) names it by
    # the FNV-1a hash; admin lists child start and end nodes, so clients must filter them by
    # spec_node_id, not by the id.
    listed = children(admin, fanout, "n0-0-dn0")

    boundary = {n.metadata.spec_node_id for i, n in listed.items() if not i.startswith("n0-0")}
    assert boundary == {"start-node"}
    assert "n0-0-dn0-0-end-node" in listed


def test_task_nodes_inside_dynamics_carry_task_node_metadata(admin, fanout):
    tasks = [
        *children(admin, fanout, "n0-0-dn0").values(),
        *children(admin, fanout, "n0-0-dn1").values(),
    ]
    top = children(admin, fanout, "")
    tasks = [n for n in tasks if n.metadata.spec_node_id not in ("start-node", "end-node")]

    for node in [*tasks, top["n1"], top["n0"]]:
        assert node.closure.HasField("task_node_metadata"), node.id.node_id
        metadata = node.closure.task_node_metadata
        assert metadata.cache_status == catalog_pb2.CACHE_DISABLED
        assert metadata.checkpoint_uri.endswith(f"/{node.id.node_id}/0/_flytecheckpoints")
    for boundary in ("start-node", "end-node"):
        assert not top[boundary].closure.HasField("task_node_metadata")


def test_node_data_of_each_dynamic_names_the_spec_of_every_child(admin, fanout):
    for parent in ("n0", "n0-0-dn0", "n0-0-dn1"):
        data = admin.GetNodeExecutionData(
            node_execution_pb2.NodeExecutionGetDataRequest(id=node_id(fanout, parent))
        )
        template = data.dynamic_workflow.compiled_workflow.primary.template
        specs = {node.id: node.WhichOneof("target") for node in template.nodes}

        for child in children(admin, fanout, parent).values():
            assert child.metadata.spec_node_id in specs
        assert {specs[n] for n in specs if n not in ("start-node", "end-node")} == {"task_node"}


def test_get_dynamic_node_workflow_returns_the_compiled_sub_workflow(admin, fanout):
    response = admin.GetDynamicNodeWorkflow(
        node_execution_pb2.GetDynamicNodeWorkflowRequest(id=node_id(fanout, "n0-0-dn0"))
    )
    template = response.compiled_workflow.primary.template

    assert template.id.name == "dynamic_n0-0-dn0"
    assert {node.id for node in template.nodes} == {
        "start-node",
        "dn0",
        "dn1",
        "dn2",
        "dn3",
        "end-node",
    }
    assert sorted(
        {t.template.id.name.rsplit(".", 1)[-1] for t in response.compiled_workflow.tasks}
    ) == [
        "count_events",
        "total",
    ]


def test_get_dynamic_node_workflow_of_a_plain_task_node_is_not_found(admin, fanout):
    with pytest.raises(grpc.RpcError) as raised:
        admin.GetDynamicNodeWorkflow(
            node_execution_pb2.GetDynamicNodeWorkflowRequest(id=node_id(fanout, "n1"))
        )

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "node does not contain dynamic workflow" in raised.value.details()


def test_flyteremote_sync_sees_dynamic_children_under_their_parents(remote, fanout):
    synced = remote.sync(remote.fetch_execution(name=fanout), sync_nodes=True)

    parent = synced.node_executions["n0"]
    assert parent.closure.phase == NodeExecutionPhase.SUCCEEDED
    assert parent.outputs["o0"] == [60, 120]
    regions = parent.subworkflow_node_executions
    assert {"n0-0-dn0", "n0-0-dn1"} <= set(regions)
    us = regions["n0-0-dn1"]
    assert us.inputs["region"] == "us" and us.outputs["o0"] == 120
    days = us.subworkflow_node_executions
    first_day = days["n0-0-dn1-0-dn0"]
    assert (first_day.inputs["region"], first_day.inputs["day"]) == ("us", "2026-03-01")
    assert first_day.outputs["o0"] == 20
    (attempt,) = first_day.task_executions
    assert attempt.outputs["o0"] == 20


def test_core_client_sync_sees_dynamic_children_under_their_parents(flyte_sandbox, fanout):
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig

    with FlyteClient(ClientConfig.for_sandbox(flyte_sandbox.endpoint)) as client:
        synced = client.sync(fanout)
        parent = synced.node_executions["n0"]
        total = parent.children["n0-0-dn0"].children["n0-0-dn0-0-dn3"]
        total_outputs = client.fetch_outputs(total)

    assert parent.is_dynamic and parent.is_parent
    assert [a.retry_attempt for a in parent.task_executions] == [0]
    eu = parent.children["n0-0-dn0"]
    assert eu.is_dynamic and eu.spec_node_id == "dn0"
    assert total.spec_node_id == "dn3" and total_outputs == {"o0": 60}
    assert len(total.task_executions) == 1


def test_failing_child_fails_both_dynamic_nodes_and_the_run_with_its_error(
    remote, admin, failed_fanout
):
    execution = remote.fetch_execution(name=failed_fanout)
    mars = admin.GetNodeExecution(
        node_execution_pb2.NodeExecutionGetRequest(id=node_id(failed_fanout, "n0-0-dn1"))
    )
    failed_days = [
        node
        for node in children(admin, failed_fanout, "n0-0-dn1").values()
        if node.closure.phase == NodePhase.FAILED
    ]

    assert execution.closure.phase == Phase.FAILED
    assert "no event source for region mars" in execution.closure.error.message
    assert mars.closure.phase == NodePhase.FAILED
    assert failed_days
    failed_day = admin.GetNodeExecution(
        node_execution_pb2.NodeExecutionGetRequest(id=failed_days[0].id)
    )
    assert failed_day.closure.error == mars.closure.error
    top = admin.GetNodeExecution(
        node_execution_pb2.NodeExecutionGetRequest(id=node_id(failed_fanout, "n0"))
    )
    assert top.closure.phase == NodePhase.FAILED
    assert top.closure.error.code == mars.closure.error.code


def test_flytekit_execution_metrics_span_the_dynamic_children(remote, fanout, capsys):
    execution = remote.fetch_execution(name=fanout)
    span = remote.get_execution_metrics(id=execution.id)

    def node_ids(node_span) -> list[str]:
        found = [node_span.node_id.node_id] if node_span.WhichOneof("id") == "node_id" else []
        for child in node_span.spans:
            found += node_ids(child)
        return found

    spanned = node_ids(span.to_flyte_idl())
    assert {"n0", "n0-0-dn0", "n0-0-dn1", "n0-0-dn1-0-dn0", "n1"} <= set(spanned)
    span.explain()
    assert "n0-0-dn1-0-dn0" in capsys.readouterr().out


def test_core_execution_metrics_explain_the_dynamic_nodes(flyte_sandbox, fanout):
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig

    with FlyteClient(ClientConfig.for_sandbox(flyte_sandbox.endpoint)) as client:
        table = client.execution_metrics(fanout).explain()

    assert "n0-0-dn1-0-dn0" in table
    assert "NODE_RESET" in table and "TASK_RUNTIME" in table


def test_recovering_a_dynamic_node_reuses_its_spec_and_reruns_only_failed_children(
    flyte_sandbox_config, admin, remote, tmp_path
):
    blocker = tmp_path / "blocked"
    blocker.write_text("")
    module = REPO / "tests" / "sandbox" / "workflows" / "dynamic_recovery.py"
    name, result = run_and_wait(
        flyte_sandbox_config, module, "blocked_sum_wf", "--count", "3", "--blocker", str(blocker)
    )
    assert result.returncode != 0
    blocker.unlink()

    new_id = remote.client.recover_execution(remote.fetch_execution(name=name).id)
    recovered = remote.wait(
        remote.fetch_execution(name=new_id.name),
        timeout=timedelta(seconds=120),
        poll_interval=timedelta(seconds=0.5),
    )

    new_name = recovered.id.name
    assert recovered.closure.phase == Phase.SUCCEEDED
    assert recovered.outputs["o0"] == 5
    attempts = admin.ListTaskExecutions(
        task_execution_pb2.TaskExecutionListRequest(
            node_execution_id=node_id(new_name, "n0"), limit=10
        )
    ).task_executions
    assert attempts == []
    phases = {
        node.metadata.spec_node_id: node.closure.phase
        for node in children(admin, new_name, "n0").values()
    }
    assert phases["dn0"] == phases["dn1"] == phases["dn2"] == NodePhase.RECOVERED
    assert phases["dn3"] == NodePhase.SUCCEEDED
    node = admin.GetNodeExecution(
        node_execution_pb2.NodeExecutionGetRequest(id=node_id(new_name, "n0"))
    )
    assert node.metadata.is_dynamic and node.closure.phase == NodePhase.SUCCEEDED


def test_registered_fan_out_launched_by_the_core_client_runs_to_its_outputs(
    flyte_sandbox, flyte_examples
):
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig

    with FlyteClient(ClientConfig.for_sandbox(flyte_sandbox.endpoint)) as client:
        execution = client.launch(
            "dynamic_fanout.fanout_wf",
            version=flyte_examples,
            inputs={"regions": ["apac"], "days": 2},
        )
        finished = client.wait(execution, timeout=180, poll_interval=0.5)
        outputs = client.fetch_outputs(finished)

    assert finished.is_successful
    assert outputs == {"o0": "apac=15"}
