"""The core client reads large data: maps behind a Get*Data link and offloaded literals.

Runs against ``large_data_runs`` (``tests/sandbox/large_data_runs.py``), a sandbox that inlines
maps below 64 KiB and offloads task outputs of 1 MiB or more; every test runs with the sync and
the async client.
"""

from __future__ import annotations

import pytest
from flyteidl.admin import common_pb2
from flyteidl.core import literals_pb2
from large_data_runs import OFFLOADED_SIZE, URL_SIZE, expected_text

from flyte_bridge._requests import literal_map_op
from flyte_bridge.config import ClientConfig
from flyte_bridge.errors import FlyteDataError

pytestmark = pytest.mark.slow


@pytest.fixture
def large_client(make_client, large_data_runs):
    return make_client(ClientConfig.for_sandbox(large_data_runs.sandbox.endpoint, rpc_timeout=10.0))


def test_outputs_behind_the_link_are_fetched(large_client, large_data_runs):
    outputs = large_client.fetch_outputs(large_data_runs.url_run)

    assert outputs == {"o0": expected_text(URL_SIZE), "o1": URL_SIZE, "o2": 4}


def test_offloaded_outputs_are_dereferenced(large_client, large_data_runs):
    outputs = large_client.fetch_outputs(large_data_runs.offloaded_run)

    assert outputs == {"o0": expected_text(OFFLOADED_SIZE), "o1": OFFLOADED_SIZE, "o2": 4}


def test_node_and_task_execution_data_behind_links_is_fetched(large_client, large_data_runs):
    synced = large_client.sync(large_data_runs.url_run, sync_nodes=True)
    join_node = synced.node_executions["n1"]

    assert large_client.fetch_inputs(join_node) == {"parts": ["x" * URL_SIZE, "tail"]}
    attempt = join_node.task_executions[0]
    assert large_client.fetch_outputs(attempt) == {"o0": expected_text(URL_SIZE)}


def test_an_offloaded_input_of_a_node_is_dereferenced(large_client, large_data_runs):
    synced = large_client.sync(large_data_runs.offloaded_run, sync_nodes=True)

    inputs = large_client.fetch_inputs(synced.node_executions["n1"])

    assert inputs == {"parts": ["x" * OFFLOADED_SIZE, "tail"]}


def test_a_link_that_cannot_be_read_raises_a_data_error_naming_it(large_client, large_data_runs):
    url = f"{large_data_runs.sandbox.http_url}/signed/1/0/missing/outputs.pb"
    blob = common_pb2.UrlBlob(url=url, bytes=100)

    with pytest.raises(FlyteDataError, match="missing/outputs.pb"):
        large_client._run(literal_map_op(literals_pb2.LiteralMap(), blob))


def test_a_link_of_zero_bytes_is_an_empty_map_and_is_not_fetched(large_client, large_data_runs):
    blob = common_pb2.UrlBlob(url=f"{large_data_runs.sandbox.http_url}/signed/1/0/nothing")

    literal_map = large_client._run(literal_map_op(literals_pb2.LiteralMap(), blob))

    assert len(literal_map.literals) == 0
