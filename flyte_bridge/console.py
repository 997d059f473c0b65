"""Links into the Flyte console (flyteconsole) for executions and registered entities.

The console has pages for executions, tasks, workflows and launch plans (with or without a
version), but none for a single node execution or task execution: their links open the page of
the execution that holds them, where the node is listed. The ``org`` of an identifier is not part
of any console route and is left out.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, quote, urlsplit

from flyteidl.core import identifier_pb2

from flyte_bridge.config import is_host
from flyte_bridge.errors import FlyteInvalidInputError

CONSOLE_PATH = "/console"
LEGACY_SANDBOX_GRPC_PORT = 30081
SANDBOX_HTTP_PORT = 30080

_ENTITY_ROUTES = {
    identifier_pb2.TASK: ("task", "tasks"),
    identifier_pb2.WORKFLOW: ("workflow", "workflows"),
    identifier_pb2.LAUNCH_PLAN: ("launch_plan", "launchPlans"),
}


def _strip_grpc_scheme(endpoint: str) -> str:
    """Drops gRPC target prefixes (``dns:///``, ``dns://authority/``, ``grpc://``, ``grpcs://``)."""
    for prefix in ("dns:///", "grpc://", "grpcs://"):
        if endpoint.startswith(prefix):
            return endpoint[len(prefix) :]
    if endpoint.startswith("dns://"):
        return endpoint[len("dns://") :].split("/", 1)[-1]
    return endpoint


def _origin(scheme: str, host_port: str) -> str:
    """``scheme://host[:port]``, leaving out the scheme's default port."""
    default_port = {"http": "80", "https": "443"}[scheme]
    if host_port.endswith(f":{default_port}"):
        host_port = host_port[: -len(default_port) - 1]
    return f"{scheme}://{host_port}"


def console_base_from_endpoint(endpoint: str, insecure: bool = False) -> str:
    """Returns the console's base URL for a gRPC endpoint, e.g. ``http://localhost:30080/console``.

    The console is taken to be served by the same host and port as the gRPC API (one ingress),
    over ``http`` when the connection is insecure and ``https`` otherwise; ``dns:///`` and
    similar gRPC target prefixes are dropped, and a default port (443, 80) is left out. The old
    flytectl sandbox served gRPC on 30081 and the console on 30080; its endpoint maps to 30080.

    Args:
        endpoint: The gRPC endpoint, ``host:port`` or a gRPC target such as ``dns:///host:443``.
        insecure: Whether the gRPC connection is plaintext.

    Raises:
        FlyteInvalidInputError: if the endpoint is empty.
    """
    target = _strip_grpc_scheme((endpoint or "").strip()).rstrip("/")
    if not target:
        raise FlyteInvalidInputError("cannot derive a console URL from an empty endpoint")
    if "://" in target:
        return normalize_console_endpoint(target, insecure)
    host, _, port = target.rpartition(":")
    if host and port == str(LEGACY_SANDBOX_GRPC_PORT) and not host.endswith("]"):
        target = f"{host}:{SANDBOX_HTTP_PORT}"
    return _origin("http" if insecure else "https", target) + CONSOLE_PATH


def normalize_console_endpoint(console_endpoint: str, insecure: bool = False) -> str:
    """Returns the console base URL for a configured console endpoint.

    Accepts ``https://flyte.example.com``, ``https://flyte.example.com/``,
    ``https://flyte.example.com/console/`` and a bare ``flyte.example.com`` (the scheme then
    follows ``insecure``); every form gives ``https://flyte.example.com/console``. A path other
    than ``/console`` is kept and ``/console`` is appended to it (a console behind a prefix).

    Raises:
        FlyteInvalidInputError: if the endpoint is empty or its scheme is not http(s).
    """
    text = (console_endpoint or "").strip()
    if not text:
        raise FlyteInvalidInputError("the console endpoint is empty")
    if "://" not in text:
        text = f"{'http' if insecure else 'https'}://{text}"
    parts = urlsplit(text)
    problem = _console_url_problem(text, parts)
    if problem:
        raise FlyteInvalidInputError(
            f"console endpoint {_masked(console_endpoint)!r}: {problem}; expected an http(s) URL"
            " such as "
            "https://flyte.example.com or https://flyte.example.com:8443/prefix"
        )
    path = parts.path.rstrip("/")
    if not path.endswith(CONSOLE_PATH):
        path += CONSOLE_PATH
    return _origin(parts.scheme, parts.netloc) + path


def _masked(text: str) -> str:
    """``text`` with whatever precedes an ``@`` (a user name, password or token) hidden."""
    if "@" not in text:
        return text
    scheme, separator, rest = text.rpartition("://")
    return f"{scheme}{separator}***@{rest.rsplit('@', 1)[1]}"


def _console_url_problem(text: str, parts: SplitResult) -> str | None:
    """What makes ``text`` unusable as the base of console links, or None."""
    if parts.scheme not in ("http", "https"):
        return f"the scheme {parts.scheme!r} is not http or https"
    if any(character.isspace() for character in text):
        return "it contains white space"
    if "@" in parts.netloc:
        return "it holds a user name or password"
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        return "it has a query or fragment"
    host = parts.hostname or ""
    if not is_host(host) or (":" in host and not parts.netloc.startswith("[")):
        return f"{host or parts.netloc or 'the host'!r} is not a host name"
    try:
        port = parts.port
    except ValueError:
        return "its port is not a number from 1 to 65535"
    if port == 0:
        return "its port is not a number from 1 to 65535"
    return None


def console_base(endpoint: str, insecure: bool = False, console_endpoint: str | None = None) -> str:
    """Returns the console base URL: the configured console endpoint, else one derived from
    the gRPC endpoint (see ``console_base_from_endpoint``)."""
    if console_endpoint:
        return normalize_console_endpoint(console_endpoint, insecure)
    return console_base_from_endpoint(endpoint, insecure)


def _segment(text: str) -> str:
    """Escapes one path segment (names may hold any character, versions often hold ``/``)."""
    return quote(str(text), safe="")


def _identifier_of(obj: Any) -> Any:
    """Finds the flyteidl identifier behind a model, an admin message or an id object."""
    known = (
        identifier_pb2.WorkflowExecutionIdentifier,
        identifier_pb2.NodeExecutionIdentifier,
        identifier_pb2.TaskExecutionIdentifier,
        identifier_pb2.Identifier,
    )
    for _ in range(4):
        if isinstance(obj, known):
            return obj
        to_proto = getattr(obj, "to_proto", None)
        if callable(to_proto):
            obj = to_proto()
        elif hasattr(obj, "id"):
            obj = obj.id
        else:
            break
    raise FlyteInvalidInputError(
        f"no console page for {type(obj).__name__}: expected an execution, node execution, task "
        "execution, task, workflow or launch plan (a model, an admin message or its identifier)"
    )


def console_url(base: str, obj: Any) -> str:
    """Returns the console link for an execution, node execution, task execution, or entity.

    Args:
        base: The console base URL (see ``console_base``), e.g. ``https://host/console``.
        obj: An ``Execution``/``NodeExecution``/``TaskExecution`` model or id, an admin message
            with an ``id`` (``admin.Execution``, ``admin.LaunchPlan``...), or a flyteidl
            identifier. Tasks, workflows and launch plans link to their version when it is set.

    Returns:
        ``{base}/projects/{project}/domains/{domain}/executions/{name}`` for executions (and for
        the node and task executions inside them), ``.../{task|workflow|launch_plan}/{name}/
        version/{version}`` for entities with a version, and the entity's page without one.

    Raises:
        FlyteInvalidInputError: for an object that has no console page.
    """
    identifier = _identifier_of(obj)
    if isinstance(identifier, identifier_pb2.TaskExecutionIdentifier):
        identifier = identifier.node_execution_id
    if isinstance(identifier, identifier_pb2.NodeExecutionIdentifier):
        identifier = identifier.execution_id
    root = base.rstrip("/")
    project, domain = _segment(identifier.project), _segment(identifier.domain)
    scope = f"{root}/projects/{project}/domains/{domain}"
    if isinstance(identifier, identifier_pb2.WorkflowExecutionIdentifier):
        return f"{scope}/executions/{_segment(identifier.name)}"
    routes = _ENTITY_ROUTES.get(identifier.resource_type)
    if routes is None:
        kind = identifier_pb2.ResourceType.Name(identifier.resource_type)
        raise FlyteInvalidInputError(
            f"no console page for a {kind} identifier: expected a task, workflow or launch plan"
        )
    versioned, listing = routes
    name = _segment(identifier.name)
    if identifier.version:
        return f"{scope}/{versioned}/{name}/version/{_segment(identifier.version)}"
    return f"{scope}/{listing}/{name}"
