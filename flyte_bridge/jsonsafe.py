"""Python values from Flyte outputs, made into plain JSON values for XCom and metadata.

:func:`flyte_bridge.literals.to_python` returns datetimes, timedeltas and reference dataclasses
(``BlobRef``, ``StructuredDatasetRef``...); orchestrators store results as JSON, so this turns them
into strings, numbers, booleans, lists and string-keyed dicts, losing as little as possible.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import math
from collections.abc import Mapping
from typing import Any


def to_json_safe(value: Any) -> Any:
    """Converts a value to JSON types, recursively.

    Datetimes and dates become ISO 8601 strings, timedeltas seconds (float), dataclasses dicts
    of their fields, enums their value, bytes base64 text, sets and tuples lists, non-finite
    floats the strings ``"nan"``, ``"inf"`` and ``"-inf"``; anything else unknown becomes its
    ``str``.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return to_json_safe(value.value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return to_json_safe(fields)
    if isinstance(value, Mapping):
        return {str(key): to_json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [to_json_safe(item) for item in items]
    return str(value)
