"""The ``flyte-bridge`` command: a small click group whose subcommands load on first use.

Subcommands are named in ``_SUBCOMMANDS`` as ``name -> "module:attribute"`` so that
``flyte-bridge --help`` imports neither grpc nor flytekit.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import MutableMapping

import click

_SUBCOMMANDS: dict[str, str] = {
    "sandbox": "flyte_bridge.sandbox.cli:sandbox",
    "executions": "flyte_bridge.cli.executions:executions",
    "signals": "flyte_bridge.cli.signals:signals",
    "backfill": "flyte_bridge.cli.backfill:backfill",
    "metrics": "flyte_bridge.cli.metrics:metrics",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs."""

    def __init__(self, *args, lazy_subcommands: dict[str, str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            module_name, attribute = self.lazy_subcommands[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attribute)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy_subcommands=_SUBCOMMANDS)
@click.version_option(package_name="flyte-bridge")
def cli() -> None:
    """Drive and monitor Flyte executions; run an embedded Flyte sandbox."""


def _quiet_grpc_core_logging(environ: MutableMapping[str, str] | None = None) -> None:
    """Has gRPC core log errors only, unless the user set ``GRPC_VERBOSITY`` or ``GRPC_TRACE``.

    Otherwise gRPC core writes its own INFO lines to stderr (``I1204 ... ssl_transport_security.cc
    ...] Handshake failed ...`` on a TLS/plaintext mismatch) ahead of the command's own error,
    which already says what went wrong. gRPC core reads the variable when it starts, so this must
    run before the first ``import grpc``; for the command line only, the library leaves it alone.
    """
    environ = os.environ if environ is None else environ
    if "GRPC_VERBOSITY" not in environ and "GRPC_TRACE" not in environ:
        environ["GRPC_VERBOSITY"] = "ERROR"


def main() -> None:
    """Entry point of the ``flyte-bridge`` console script."""
    _quiet_grpc_core_logging()
    cli()
