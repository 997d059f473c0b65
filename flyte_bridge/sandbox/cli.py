"""``flyte-bridge sandbox``: run the embedded control plane in the foreground."""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import click

from flyte_bridge.errors import FlyteConfigError
from flyte_bridge.sandbox.api import default_data_dir, start_sandbox
from flyte_bridge.sandbox.start_options import start_options


@click.group()
def sandbox() -> None:
    """Run the embedded Flyte control plane (no Docker, no Kubernetes)."""


_PORT = click.IntRange(0, 65535)


def _creatable_dir(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Refuses a ``--data-dir`` that cannot be created because a file is in its way
    (``/etc/hostname/sub``), before anything starts; other refusals (a parent that takes no new
    directories, such as ``/proc/1``) are reported when the start creates it."""
    if value is None:
        return None
    existing = value
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing != value and not existing.is_dir():
        raise click.BadParameter(
            f"Directory '{value}' cannot be created: '{existing}' is a file.", ctx, param
        )
    return value


def _not_created(data_dir: Path, error: OSError) -> str:
    """Names the directory, and the parent of it whose creation failed, with the reason."""
    failed = Path(os.fsdecode(error.filename))
    if Path(os.path.abspath(failed)) == Path(os.path.abspath(data_dir)):
        where = f"in '{data_dir.parent}'"
    else:
        where = f"as its parent '{failed}' cannot be"
    return f"Directory '{data_dir}' cannot be created {where}: {error.strerror}."


def _creating(data_dir: Path, error: OSError) -> bool:
    """Whether ``error`` is the failure to create ``data_dir`` or one of its parents."""
    if error.filename is None:
        return False
    failed = Path(os.path.abspath(os.fsdecode(error.filename)))
    wanted = Path(os.path.abspath(data_dir))
    return failed == wanted or failed in wanted.parents


@sandbox.command()
@click.option(
    "--port",
    type=_PORT,
    default=30080,
    show_default=True,
    help="gRPC port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    callback=_creatable_dir,
    default=None,
    help="Database and blob store directory [default: ~/.flyte-bridge/sandbox]; one sandbox "
    "at a time.",
)
@click.option(
    "--http-port", type=_PORT, default=0, help="Port for signed URLs and logs (0: any free port)."
)
@click.option("-v", "--verbose", is_flag=True, help="Log every refused request.")
@start_options
def start(
    port: int, data_dir: Path | None, http_port: int, verbose: bool, start_kwargs: dict
) -> None:
    """Start the sandbox and serve until Ctrl-C."""
    if port and port == http_port:
        raise click.UsageError(f"--port and --http-port are both {port}; they must differ")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    data_dir = data_dir or default_data_dir()
    try:
        running = start_sandbox(port=port, data_dir=data_dir, http_port=http_port, **start_kwargs)
    except FlyteConfigError as err:
        # Another sandbox on the data directory, a port in use: one line, no traceback.
        raise click.ClickException(str(err)) from None
    except OSError as err:
        if not _creating(data_dir, err):
            raise
        raise click.BadParameter(_not_created(data_dir, err), param_hint="'--data-dir'") from None
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    dumps_stacks = False
    try:
        if hasattr(signal, "SIGUSR1"):
            # `kill -USR1 <pid>` writes every thread's stack to stderr: what a stuck sandbox
            # waits on. Skipped where stderr is no file (an embedding that replaced it).
            with contextlib.suppress(OSError, ValueError, AttributeError):
                faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
                dumps_stacks = True
        security = "TLS" if running.ca_cert_path else "insecure"
        click.echo(f"Flyte sandbox serving gRPC on {running.endpoint} ({security})")
        if running.auth is not None:
            click.echo(f"Bearer tokens required; token endpoint {running.auth.token_endpoint}")
        if running.faults.settings.active:
            click.echo(f"Injecting faults: {running.faults.settings}")
        limits = running.server.data_limits
        offloading = (
            f"task outputs of {limits.offloading_min_mb} MiB or more are offloaded"
            if limits.literal_offloading
            else "literal offloading off"
        )
        inline = (
            f"inline below {limits.max_inline_bytes} bytes"
            if limits.max_inline_bytes
            else "always inline"
        )
        click.echo(f"Inputs and outputs {inline}; {offloading}")
        click.echo(f"Signed URLs and task logs on {running.http_url}")
        click.echo(f"Data in {running.data_dir}")
        click.echo("\nflytekit config (e.g. ~/.flyte/config-sandbox.yaml):\n")
        click.echo(running.flytekit_config())
        click.echo("Press Ctrl-C to stop.")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if dumps_stacks:
            faulthandler.unregister(signal.SIGUSR1)
        signal.signal(signal.SIGTERM, previous)
        click.echo("Stopping the sandbox...")
        running.stop()
