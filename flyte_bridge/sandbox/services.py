"""The gRPC services the sandbox serves, and the names of their methods.

The server registers every RPC of these services (the ones it lacks answer UNIMPLEMENTED), so
these are also the method names fault injection can be aimed at.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flyteidl.service import (
    admin_pb2_grpc,
    auth_pb2_grpc,
    dataproxy_pb2_grpc,
    identity_pb2_grpc,
    signal_pb2_grpc,
)

SERVICES: dict[str, tuple[Callable[[Any, Any], None], type]] = {
    "AdminService": (
        admin_pb2_grpc.add_AdminServiceServicer_to_server,
        admin_pb2_grpc.AdminServiceServicer,
    ),
    "SignalService": (
        signal_pb2_grpc.add_SignalServiceServicer_to_server,
        signal_pb2_grpc.SignalServiceServicer,
    ),
    "DataProxyService": (
        dataproxy_pb2_grpc.add_DataProxyServiceServicer_to_server,
        dataproxy_pb2_grpc.DataProxyServiceServicer,
    ),
    "AuthMetadataService": (
        auth_pb2_grpc.add_AuthMetadataServiceServicer_to_server,
        auth_pb2_grpc.AuthMetadataServiceServicer,
    ),
    "IdentityService": (
        identity_pb2_grpc.add_IdentityServiceServicer_to_server,
        identity_pb2_grpc.IdentityServiceServicer,
    ),
}
"""Service name -> (grpc's ``add_..._to_server`` function, the generated servicer base)."""


def rpc_names(base: type) -> list[str]:
    """The RPC names of a generated servicer base class (``"GetExecution"``...)."""
    return [name for name in vars(base) if name[:1].isupper()]


@functools.cache
def served_methods() -> frozenset[str]:
    """Short names of every method the sandbox serves, as fault injection names them."""
    return frozenset(name for _, base in SERVICES.values() for name in rpc_names(base))
