"""Signals: created when a gate starts, set by approve/reject/set_input, checked by type."""

from __future__ import annotations

import grpc
import pytest
from admin_builders import BOOLEAN_TYPE, INTEGER, integer, launch, simple_launch_plan, string
from flyteidl.admin import signal_pb2
from flyteidl.core import identifier_pb2, literals_pb2


def _boolean(value: bool) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(boolean=value))
    )


@pytest.fixture
def signal_id(bare_admin):
    """The id of a signal ``approve-it`` on a fresh execution (not created yet)."""
    launch_plan_id, _ = simple_launch_plan(bare_admin, "gated")
    execution_id = launch(bare_admin, launch_plan_id, x=integer(1))
    return identifier_pb2.SignalIdentifier(signal_id="approve-it", execution_id=execution_id)


def _create(signals, signal_id, literal_type=BOOLEAN_TYPE):
    return signals.GetOrCreateSignal(
        signal_pb2.SignalGetOrCreateRequest(id=signal_id, type=literal_type)
    )


def _list(signals, signal_id, filters=""):
    return signals.ListSignals(
        signal_pb2.SignalListRequest(
            workflow_execution_id=signal_id.execution_id, limit=10, filters=filters
        )
    ).signals


def test_set_signal_before_the_gate_started_is_invalid_argument(bare_signals, signal_id):
    with pytest.raises(grpc.RpcError) as caught:
        bare_signals.SetSignal(signal_pb2.SignalSetRequest(id=signal_id, value=_boolean(True)))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "failed to validate that signal" in caught.value.details()
    assert "or the workflow has no gate with this signal id" in caught.value.details()


def test_signal_appears_in_the_list_once_the_gate_created_it(bare_signals, signal_id):
    assert list(_list(bare_signals, signal_id)) == []

    _create(bare_signals, signal_id)

    (listed,) = _list(bare_signals, signal_id)
    assert listed.id.signal_id == "approve-it"
    assert not listed.HasField("value")


def test_setting_a_signal_stores_the_value_and_wakes_the_engine(
    bare_signals, bare_engine, signal_id
):
    _create(bare_signals, signal_id)

    bare_signals.SetSignal(signal_pb2.SignalSetRequest(id=signal_id, value=_boolean(True)))

    assert _create(bare_signals, signal_id).value.scalar.primitive.boolean is True
    assert signal_id in bare_engine.signals


def test_setting_a_signal_twice_overwrites_the_value(bare_signals, signal_id):
    _create(bare_signals, signal_id)

    for value in (True, False):
        bare_signals.SetSignal(signal_pb2.SignalSetRequest(id=signal_id, value=_boolean(value)))

    assert _list(bare_signals, signal_id)[0].value.scalar.primitive.boolean is False


def test_a_value_of_the_wrong_type_is_invalid_argument(bare_signals, signal_id):
    _create(bare_signals, signal_id)

    with pytest.raises(grpc.RpcError) as caught:
        bare_signals.SetSignal(signal_pb2.SignalSetRequest(id=signal_id, value=string("yes")))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not castable" in caught.value.details()


def test_asking_for_a_signal_with_another_type_is_already_exists(bare_signals, signal_id):
    _create(bare_signals, signal_id)

    with pytest.raises(grpc.RpcError) as caught:
        _create(bare_signals, signal_id, INTEGER)

    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_signals_filter_on_signal_id(bare_signals, signal_id):
    _create(bare_signals, signal_id)
    other = identifier_pb2.SignalIdentifier()
    other.CopyFrom(signal_id)
    other.signal_id = "other"
    _create(bare_signals, other)

    listed = _list(bare_signals, signal_id, filters="eq(signal_id,other)")

    assert [s.id.signal_id for s in listed] == ["other"]
