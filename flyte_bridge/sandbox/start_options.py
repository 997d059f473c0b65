"""Command-line options of ``flyte-bridge sandbox start`` for faults, auth, TLS and data limits."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from flyte_bridge.errors import FlyteConfigError

SECRET_ENV = "FLYTE_BRIDGE_SANDBOX_CLIENT_SECRET"

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_OPTIONS = [
    click.option("--tls-cert", type=_FILE, help="PEM certificate: serve gRPC over TLS."),
    click.option("--tls-key", type=_FILE, help="PEM private key of --tls-cert."),
    click.option(
        "--auth-client-secret",
        envvar=SECRET_ENV,
        show_envvar=True,
        help="Require bearer tokens, granted to this client secret (prefer the variable).",
    ),
    click.option(
        "--auth-client-id", help="Client id allowed to get tokens [default: flyte-bridge]."
    ),
    click.option(
        "--auth-token-lifetime",
        type=click.FloatRange(min=0, min_open=True),
        help="Token lifetime in seconds.",
    ),
    click.option("--auth-header", help="gRPC metadata key of the token [default: authorization]."),
    click.option("--fault-latency", help="Seconds added per RPC, e.g. 0.05 or 0.01-0.2."),
    click.option(
        "--fault-failure-rate",
        type=click.FloatRange(0, 1),
        help="Share of RPCs answered UNAVAILABLE (0 to 1).",
    ),
    click.option("--fault-black-hole", is_flag=True, help="Accept RPCs and never answer."),
    click.option(
        "--fault-drop-rate",
        type=click.FloatRange(0, 1),
        help="Share of RPCs whose connection drops (0 to 1).",
    ),
    click.option(
        "--fault-methods",
        help="Comma-separated RPC names the faults apply to (GetExecution,ListExecutions) "
        "[default: all].",
    ),
    click.option(
        "--max-inline-data-bytes",
        type=click.IntRange(min=0),
        help="Get*Data inlines stored inputs/outputs below this size; above it clients follow "
        "the signed URL [default: 2097152, flyteadmin's; 0: inline everything].",
    ),
    click.option(
        "--literal-offloading-min-mb",
        type=click.IntRange(min=0),
        help="Switch propeller's literal offloading on: task outputs of at least this many MiB "
        "are offloaded [default: off; propeller uses 10].",
    ),
    click.option(
        "--literal-offloading-max-mb",
        type=click.IntRange(min=1),
        help="With offloading on, outputs of this many MiB or more fail the task [default: 1000].",
    ),
]
_NAMES = [
    "tls_cert",
    "tls_key",
    "auth_client_secret",
    "auth_client_id",
    "auth_token_lifetime",
    "auth_header",
    "fault_latency",
    "fault_failure_rate",
    "fault_black_hole",
    "fault_drop_rate",
    "fault_methods",
    "max_inline_data_bytes",
    "literal_offloading_min_mb",
    "literal_offloading_max_mb",
]


def start_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the fault, auth, TLS and data-limit options; ``command`` gets ``start_kwargs``."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in _NAMES}
        try:
            kwargs["start_kwargs"] = start_kwargs(**values)
        except FlyteConfigError as err:
            raise click.UsageError(str(err)) from None
        return command(*args, **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def start_kwargs(
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    auth_client_secret: str | None = None,
    auth_client_id: str | None = None,
    auth_token_lifetime: float | None = None,
    auth_header: str | None = None,
    fault_latency: str | None = None,
    fault_failure_rate: float | None = None,
    fault_black_hole: bool = False,
    fault_drop_rate: float | None = None,
    fault_methods: str | None = None,
    max_inline_data_bytes: int | None = None,
    literal_offloading_min_mb: int | None = None,
    literal_offloading_max_mb: int | None = None,
) -> dict[str, Any]:
    """Keyword arguments of :func:`~flyte_bridge.sandbox.api.start_sandbox` from the options.

    Raises:
        FlyteConfigError: An option is malformed or needs another one.
    """
    from flyte_bridge.sandbox.auth_server import auth_settings
    from flyte_bridge.sandbox.data_limits import data_limits
    from flyte_bridge.sandbox.faults import fault_settings
    from flyte_bridge.sandbox.tls import tls_files

    if tls_cert is not None and tls_key is None:
        raise FlyteConfigError("--tls-cert needs --tls-key, the certificate's private key")
    if tls_key is not None and tls_cert is None:
        raise FlyteConfigError("--tls-key needs --tls-cert, the certificate of that key")
    # Checked here so that a file that is not a PEM pair is a usage error, not a failed start.
    tls_files(tls_cert, tls_key)
    faults: dict[str, Any] = {}
    if fault_latency:
        faults["latency"] = _latency(fault_latency)
    if fault_failure_rate is not None:
        faults["failure_rate"] = fault_failure_rate
    if fault_black_hole:
        faults["black_hole"] = True
    if fault_drop_rate is not None:
        faults["drop_rate"] = fault_drop_rate
    if fault_methods is not None:
        faults["methods"] = [m.strip() for m in fault_methods.split(",") if m.strip()]
    settings = fault_settings(faults)
    if fault_methods is not None and not settings.active:
        raise FlyteConfigError(
            "--fault-methods only says where faults apply; add a fault (--fault-latency, "
            "--fault-failure-rate, --fault-black-hole or --fault-drop-rate)"
        )
    # Checked here so that a bad combination is a usage error, not a failed start.
    data_limits(max_inline_data_bytes, literal_offloading_min_mb, literal_offloading_max_mb)
    return {
        "max_inline_data_bytes": max_inline_data_bytes,
        "literal_offloading_min_mb": literal_offloading_min_mb,
        "literal_offloading_max_mb": literal_offloading_max_mb,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
        "auth": auth_settings(auth_client_id, auth_client_secret, auth_token_lifetime, auth_header),
        "faults": settings,
    }


def _latency(text: str) -> float | tuple[float, float]:
    """``"0.05"`` or ``"0.01-0.2"`` as seconds or a range."""
    low, dash, high = text.partition("-")
    try:
        return (float(low), float(high)) if dash else float(low)
    except ValueError:
        raise FlyteConfigError(
            f"--fault-latency must be seconds, at least 0 (0.05), or a range (0.01-0.2), got "
            f"{text!r}"
        ) from None
