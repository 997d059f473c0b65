"""How the sandbox treats large data, after flyteadmin's and flytepropeller's settings.

Two mechanisms, both configurable when the sandbox starts:

- **flyteadmin's inline limit** (its ``remoteData.maxSizeInBytes``, 2 MiB by default). The sandbox
  answers GetExecutionData, GetNodeExecutionData and GetTaskExecutionData as flyteadmin does with
  a blob store and signed URLs switched on: ``inputs``/``outputs`` are a ``UrlBlob`` (a signed
  link to the stored LiteralMap and its size) whenever the map is stored, and
  ``full_inputs``/``full_outputs`` carry the map only when it is smaller than the limit. Above it
  clients must follow the link. Inline ``output_data`` in an event larger than the limit is
  refused with RESOURCE_EXHAUSTED; smaller inline data is written to the store (flyteadmin's
  default "offload" policy) and the closure gets its URI.
- **flytepropeller's literal offloading** (``literal-offloading-config``), off by default as in
  Flyte's release configurations since 1.15. When on, every task process gets
  ``_F_L_MIN_SIZE_MB`` and ``_F_L_MAX_SIZE_MB`` (propeller's defaults: 10 and 1000), so flytekit
  writes each output literal of at least the minimum size to
  ``<output prefix>/<var>_offloaded_metadata.pb`` and puts a literal with ``offloaded_metadata``
  in ``outputs.pb``; an output of the maximum size or more fails the task. Admin returns such
  literals as they are; the engine reads them only where it must look inside (attribute paths,
  branch conditions).

A stock flyteadmin without signed URLs inlines every map whatever its size; the sandbox plays a
cluster with a blob store instead, so that clients meet the URL path in tests.
"""

from __future__ import annotations

import dataclasses

from flyte_bridge.errors import FlyteConfigError

DEFAULT_MAX_INLINE_BYTES = 2 * 1024 * 1024
"""flyteadmin's ``remoteData.maxSizeInBytes`` default (2 MiB)."""

DEFAULT_OFFLOADING_MIN_MB = 10
"""flytepropeller's ``literal-offloading-config.min-size-in-mb-for-offloading`` default."""

DEFAULT_OFFLOADING_MAX_MB = 1000
"""flytepropeller's ``literal-offloading-config.max-size-in-mb-for-offloading`` default."""


@dataclasses.dataclass(frozen=True)
class DataLimits:
    """Size limits for data the sandbox returns and the tasks it runs write.

    Args:
        max_inline_bytes: Get*Data inlines a stored LiteralMap only when it is smaller than this;
            0 inlines every map (flyteadmin's rule for a zero limit).
        offloading_min_mb: Switches literal offloading on: task outputs of at least this many
            MiB are offloaded by flytekit. None leaves it off. 0 offloads every output.
        offloading_max_mb: Task outputs of this many MiB or more fail the task (only with
            offloading on).

    Raises:
        FlyteConfigError: A size is negative, or the maximum is not above the minimum.
    """

    max_inline_bytes: int = DEFAULT_MAX_INLINE_BYTES
    offloading_min_mb: int | None = None
    offloading_max_mb: int = DEFAULT_OFFLOADING_MAX_MB

    def __post_init__(self) -> None:
        for name in ("max_inline_bytes", "offloading_min_mb", "offloading_max_mb"):
            value = getattr(self, name)
            if value is None and name == "offloading_min_mb":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise FlyteConfigError(
                    f"{name} must be a whole number of at least 0, got {value!r}"
                )
        if self.offloading_min_mb is not None and self.offloading_max_mb <= self.offloading_min_mb:
            raise FlyteConfigError(
                f"offloading_max_mb ({self.offloading_max_mb}) must be above offloading_min_mb "
                f"({self.offloading_min_mb})"
            )

    @property
    def literal_offloading(self) -> bool:
        """Whether task processes are told to offload large output literals."""
        return self.offloading_min_mb is not None

    def inlines(self, size: int) -> bool:
        """Whether a LiteralMap of ``size`` bytes is returned inline (``full_*``)."""
        return self.max_inline_bytes == 0 or size < self.max_inline_bytes

    def accepts_event_data(self, size: int) -> bool:
        """Whether inline event ``output_data`` of ``size`` bytes is accepted."""
        return self.max_inline_bytes == 0 or size <= self.max_inline_bytes

    def task_environment(self) -> dict[str, str]:
        """The variables propeller adds to every task process for literal offloading."""
        if self.offloading_min_mb is None:
            return {}
        return {
            "_F_L_MIN_SIZE_MB": str(self.offloading_min_mb),
            "_F_L_MAX_SIZE_MB": str(self.offloading_max_mb),
        }


def data_limits(
    max_inline_bytes: int | None = None,
    offloading_min_mb: int | None = None,
    offloading_max_mb: int | None = None,
) -> DataLimits:
    """:class:`DataLimits` from optional settings; None keeps flyteadmin's or propeller's default.

    Raises:
        FlyteConfigError: A setting is out of range, or a maximum is given without a minimum.
    """
    if offloading_max_mb is not None and offloading_min_mb is None:
        raise FlyteConfigError(
            "offloading_max_mb needs offloading_min_mb: literal offloading is off without it"
        )
    return DataLimits(
        max_inline_bytes=DEFAULT_MAX_INLINE_BYTES if max_inline_bytes is None else max_inline_bytes,
        offloading_min_mb=offloading_min_mb,
        offloading_max_mb=(
            DEFAULT_OFFLOADING_MAX_MB if offloading_max_mb is None else offloading_max_mb
        ),
    )
