"""Organizations (``org`` in flyteidl identifiers): kept from admin's answers, sent with every
call about them, and taken from ``ClientConfig.default_org`` for ids the caller names by string.

The sandbox has no organizations, so these drive the shared operations by hand and look at the
requests they would send.
"""

from __future__ import annotations

from flyteidl.admin import execution_pb2
from flyteidl.core import identifier_pb2

from flyte_bridge._base import ClientBase
from flyte_bridge._requests import get_execution_call
from flyte_bridge._tree import TreeCache, fill_tree_op
from flyte_bridge.config import ClientConfig
from flyte_bridge.models import EntityId, Execution, ExecutionId
from flyte_bridge.watcher import tick_calls

ORG_CONFIG = ClientConfig.for_sandbox("127.0.0.1:1", default_org="acme")


def _first_call(op):
    return next(op)


def test_ids_keep_their_org_through_protos_but_not_in_their_text():
    pb = identifier_pb2.WorkflowExecutionIdentifier(project="p", domain="d", name="run", org="acme")

    execution_id = ExecutionId.from_proto(pb)

    assert execution_id.org == "acme"
    assert execution_id.to_proto() == pb
    assert str(execution_id) == "p/d/run"
    entity = identifier_pb2.Identifier(
        resource_type=identifier_pb2.LAUNCH_PLAN, project="p", domain="d", name="lp", version="v"
    )
    entity.org = "acme"
    assert EntityId.from_proto(entity).to_proto() == entity


def test_an_execution_named_by_string_is_fetched_in_the_default_org():
    client = ClientBase(ORG_CONFIG)

    call = _first_call(client._fetch_op("run-1"))

    assert (call.method, call.request.id.org, call.request.id.name) == (
        "GetExecution",
        "acme",
        "run-1",
    )
    assert client.execution_id("p/d/run-2").org == "acme"


def test_listing_and_launching_are_scoped_to_the_default_org():
    client = ClientBase(ORG_CONFIG)

    listing = _first_call(client._pages(None, None, None, None, 10).next_op())
    recent = _first_call(client._recent_op(None, None, 5, None, None))
    launch = _first_call(client._launch_op("daily_report", None, None, {}, None, None, None, {}))

    assert (listing.method, listing.request.id.org) == ("ListExecutions", "acme")
    assert recent.request.id.org == "acme"
    assert (launch.method, launch.request.id.org) == ("GetActiveLaunchPlan", "acme")


def test_the_watcher_lists_each_org_apart():
    ids = [ExecutionId("p", "d", "a", "acme"), ExecutionId("p", "d", "b", "other")]

    calls = tick_calls(ids)

    assert sorted(c.request.id.org for c in calls) == ["acme", "other"]


def test_a_synced_tree_asks_for_nodes_in_the_org_of_the_execution():
    pb = execution_pb2.Execution(
        id=identifier_pb2.WorkflowExecutionIdentifier(
            project="p", domain="d", name="run", org="acme"
        )
    )

    gather = _first_call(fill_tree_op(Execution(pb), TreeCache()))
    list_nodes = _first_call(gather.ops[1])

    assert list_nodes.method == "ListNodeExecutions"
    assert list_nodes.request.workflow_execution_id.org == "acme"
    assert get_execution_call(Execution(pb).id).request.id.org == "acme"
