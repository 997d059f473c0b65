"""What the ``flyte-bridge`` commands share: connection options, errors, formatting, values."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from flyte_bridge.errors import FlyteBridgeError

logger = logging.getLogger(__name__)

DEFAULT_PROJECT = "flytesnacks"
DEFAULT_DOMAIN = "development"
"""Used, as by ``pyflyte run``, when neither the command line nor the config names them."""

_PHASE_STYLES = {
    "SUCCEEDED": "green",
    "RECOVERED": "green",
    "SKIPPED": "dim",
    "FAILED": "red",
    "FAILING": "red",
    "TIMED_OUT": "red",
    "ABORTED": "yellow",
    "ABORTING": "yellow",
    "RUNNING": "cyan",
    "DYNAMIC_RUNNING": "cyan",
    "QUEUED": "blue",
    "INITIALIZING": "blue",
    "WAITING_FOR_RESOURCES": "blue",
    "RETRYABLE_FAILED": "magenta",
}


def console() -> Console:
    """The console the commands write to: stdout as it is now (CliRunner swaps it), 160
    columns wide when it is not a terminal so that piped tables do not wrap."""
    stream = sys.stdout
    # No console markup: names, types (list[int]) and values are printed as they are.
    return Console(
        file=stream, soft_wrap=True, width=None if stream.isatty() else 160, markup=False
    )


# Human output shows this much of a long value; --json gives all of it.
SHOWN_VALUE_LENGTH = 2000


def shortened(text: str) -> str:
    """``text`` cut to SHOWN_VALUE_LENGTH characters, saying how long it is and where it all is."""
    if len(text) <= SHOWN_VALUE_LENGTH:
        return text
    return f"{text[:SHOWN_VALUE_LENGTH]}... ({len(text):,} characters; --json shows all)"


def one_line_error(text: str) -> str:
    """A task's error as one line: its first line (``USER:RuntimeError:``, a ``Trace:`` marker
    dropped) with flytekit's ``Message:`` part, else the last line; the whole text stays in
    ``--json`` and on the console page."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) <= 1:
        return text.strip()
    head = lines[0].removesuffix("Trace:").strip()
    _, marker, after = text.partition("\nMessage:")
    rest = [line.strip() for line in (after.splitlines() if marker else lines[1:])]
    rest = [line for line in rest if line and line not in ("User error.", "System error.")]
    if not rest:
        return f"{head} (the whole error: --json)"
    message = rest[0] if marker else rest[-1]
    return f"{head} {message} (the whole error: --json)"


def _not_empty(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuses ``-p ''``: an empty name would otherwise fall back to the default in silence."""
    if value is not None and not value.strip():
        raise click.BadParameter(
            f"an empty value ({value!r}) is no {param.name}; leave the option out for the "
            f"config's or the default {param.name}",
            ctx,
            param,
        )
    return value


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds ``--config``, ``--endpoint``, ``--insecure/--secure``, ``--project``, ``--domain``,
    ``--rpc-timeout`` and ``--max-retries``.

    The command receives them as one ``connection`` dict (see :func:`open_client`).
    """

    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        help="flytekit or flytectl config file (default: the file flytekit would read).",
    )
    @click.option(
        "--endpoint",
        callback=_not_empty,
        help="Admin gRPC endpoint host:port; wins over the config file.",
    )
    @click.option(
        "--insecure/--secure",
        default=None,
        help="Plaintext gRPC (a local sandbox) or TLS; default from the config file.",
    )
    @click.option(
        "--project",
        "-p",
        callback=_not_empty,
        help="Project (default: the config's, else flytesnacks).",
    )
    @click.option(
        "--domain",
        "-d",
        callback=_not_empty,
        help="Domain (default: the config's, else development).",
    )
    @click.option(
        "--rpc-timeout",
        type=click.FloatRange(min=0, min_open=True),
        help="Seconds each call may take before it is retried or fails (default: the "
        "config's, else 30).",
    )
    @click.option(
        "--max-retries",
        type=click.IntRange(min=0),
        help="Retries of a call that failed for a passing reason (default: the config's, else "
        "5; 0 fails fast).",
    )
    @functools.wraps(command)
    def wrapper(
        config_path: str | None,
        endpoint: str | None,
        insecure: bool | None,
        project: str | None,
        domain: str | None,
        rpc_timeout: float | None,
        max_retries: int | None,
        **kwargs: Any,
    ) -> Any:
        connection = dict(
            config_path=config_path,
            endpoint=endpoint,
            insecure=insecure,
            project=project,
            domain=domain,
            rpc_timeout=rpc_timeout,
            max_retries=max_retries,
        )
        return command(connection=connection, **kwargs)

    return wrapper


@contextlib.contextmanager
def open_client(connection: dict[str, Any]) -> Iterator[Any]:
    """A FlyteClient configured from the flytekit config, with the command line's overrides."""
    from flyte_bridge.client import FlyteClient
    from flyte_bridge.config import ClientConfig

    overrides: dict[str, Any] = {}
    if connection.get("endpoint"):
        overrides["endpoint"] = connection["endpoint"]
    if connection.get("insecure") is not None:
        overrides["insecure"] = connection["insecure"]
    if connection.get("project"):
        overrides["default_project"] = connection["project"]
    if connection.get("domain"):
        overrides["default_domain"] = connection["domain"]
    for setting in ("rpc_timeout", "max_retries"):
        if connection.get(setting) is not None:
            overrides[setting] = connection[setting]
    with reporting_errors():
        config = ClientConfig.from_flytekit_config(connection.get("config_path"), **overrides)
        config = config.replace(
            default_project=config.default_project or DEFAULT_PROJECT,
            default_domain=config.default_domain or DEFAULT_DOMAIN,
        )
        client = FlyteClient(config)
    try:
        with reporting_errors():
            yield client
    finally:
        client.close()


@contextlib.contextmanager
def reporting_errors() -> Iterator[None]:
    """Turns flyte-bridge errors into a one-line click error (exit code 1), no traceback."""
    try:
        yield
    except FlyteBridgeError as error:
        raise click.ClickException(f"{type(error).__name__}: {error}") from error


def check_scope_exists(client: Any, project: str, domain: str) -> None:
    """Fails (exit 1, as a lookup there does) when admin has no such project, or no such
    domain in it.

    Meant for an empty answer only (it costs one more RPC): admin lists nothing, rather than
    failing, for a project it does not know. When the projects cannot be listed (a server that
    refuses ListProjects to this caller), nothing is said.

    Raises:
        click.ClickException: naming the unknown project (or domain) and the registered ones.
    """
    from flyte_bridge.errors import FlyteNotFoundError

    try:
        client.check_scope(project, domain)
    except FlyteNotFoundError as error:
        raise click.ClickException(
            f"{type(error).__name__}: {error.message} (on {client.config.endpoint})"
        ) from error
    except FlyteBridgeError as error:
        logger.debug("Could not list the projects to check %s/%s: %s", project, domain, error)


def phase_text(phase_name: str) -> Text:
    """A phase name colored by what it means (green done, red failed, cyan running...)."""
    return Text(phase_name, style=_PHASE_STYLES.get(phase_name, ""))


def format_time(moment: dt.datetime | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC, or ``-``."""
    if moment is None:
        return "-"
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(duration: dt.timedelta | None) -> str:
    """``1h02m03s``, ``4m05s``, ``6.2s``, or ``-``."""
    if duration is None:
        return "-"
    seconds = duration.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def elapsed(item: Any, now: dt.datetime | None = None) -> dt.timedelta | None:
    """How long an execution, node or attempt ran: its duration once done, else so far."""
    if item.duration is not None:
        return item.duration
    started = item.started_at
    if started is None or item.is_done:
        return None
    return (now or dt.datetime.now(dt.timezone.utc)) - started


def print_json(data: Any) -> None:
    """Writes ``data`` as indented, strict JSON to stdout (see
    :func:`flyte_bridge.jsonsafe.to_json_safe`: NaN is ``"nan"``, never a bare NaN)."""
    from flyte_bridge.jsonsafe import to_json_safe

    click.echo(json.dumps(to_json_safe(data), indent=2, allow_nan=False))


class UtcDateTime(click.ParamType):
    """An ISO 8601 date or datetime (``2024-01-02``, ``2024-01-02T06:00Z``); naive is UTC."""

    name = "datetime"

    def convert(self, value: Any, param: Any, ctx: Any) -> dt.datetime:
        if isinstance(value, dt.datetime):
            moment = value
        else:
            try:
                moment = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
            except ValueError:
                self.fail(f"{value!r} is not an ISO 8601 date or datetime", param, ctx)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=dt.timezone.utc)
        return moment.astimezone(dt.timezone.utc)


def type_label(literal_type: Any) -> str:
    """A declared type as a Python workflow writes it (see
    :func:`flyte_bridge.literals.python_type_name`)."""
    from flyte_bridge.literals import python_type_name

    return python_type_name(literal_type)


def parse_value(text: str, literal_type: Any) -> Any:
    """Reads a command-line value as the Python value a declared LiteralType takes (see
    :func:`flyte_bridge.literals.from_text`).

    Raises:
        click.BadParameter: if the text cannot be read as the declared type; for a simple type
            it says so with the type's Python name and the text that type reads
            (``'abc' is not an int: expected a whole number such as 25``).
    """
    from flyte_bridge import literals
    from flyte_bridge.errors import FlyteInvalidInputError

    try:
        return literals.from_text(text, literal_type)
    except FlyteInvalidInputError as error:
        raise click.BadParameter(error.message) from None
