"""Checks of plain arguments, shared so that every part words a wrong switch or count alike."""

from __future__ import annotations

from flyte_bridge.errors import FlyteBridgeError, FlyteInvalidInputError


def require_bool(
    name: str, value: object, error: type[FlyteBridgeError] = FlyteInvalidInputError
) -> None:
    """Refuses a switch that is not True or False: the text ``"false"`` would count as true."""
    if not isinstance(value, bool):
        raise error(f"{name} must be True or False, got {value!r}")


def require_int(
    name: str, value: object, least: int, error: type[FlyteBridgeError] = FlyteInvalidInputError
) -> None:
    """Refuses a count that is not a whole number of at least ``least`` (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise error(f"{name} must be an int >= {least}, got {value!r}")
