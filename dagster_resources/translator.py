"""From Flyte launch plans and their outputs to Dagster ``AssetSpec``s.

A launch plan is described by :class:`FlyteLaunchPlanProps`, either written by hand (so that
definitions load without calling Flyte) or read from Flyte with
:func:`dagster_resources.load_flyte_launch_plan_props`. Each output of the launch plan becomes one
asset; a launch plan with no outputs becomes a single asset named after it. The launch plan's id
is written into the spec's metadata, and the code that runs the asset reads it back from there,
so the translator is the one place that says which launch plan an asset stands for.
"""

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import dagster as dg

METADATA_NAMESPACE = "flyte"
"""Prefix of every metadata key this library writes: ``flyte/execution_url`` and so on."""


def metadata_key(name: str) -> str:
    """The namespaced metadata key for ``name``, e.g. ``flyte/execution_url``."""
    return f"{METADATA_NAMESPACE}/{name}"


LAUNCH_PLAN_KEY = metadata_key("launch_plan")
PROJECT_KEY = metadata_key("project")
DOMAIN_KEY = metadata_key("domain")
VERSION_KEY = metadata_key("version")
OUTPUT_KEY = metadata_key("output")
OUTPUT_TYPE_KEY = metadata_key("output_type")
KICKOFF_TIME_INPUT_KEY = metadata_key("kickoff_time_input")


class FlyteLaunchPlanProps(NamedTuple):
    """What the asset layer needs to know about one launch plan.

    Args:
        name: The launch plan's name, e.g. ``examples.workflows.hello``.
        project: Its project; ``None`` uses the resource's default project.
        domain: Its domain; ``None`` uses the resource's default domain.
        version: A fixed version; ``None`` launches the active (else the latest) version.
        outputs: Output name to its type, as Flyte names it, case aside: ``{"o0": "integer"}``,
            ``List[STRING]``, ``file<csv>`` (see :data:`OUTPUT_TYPE_WORDS`).
        inputs: Input name to a short description of its type, for documentation only.
        description: Shown on the assets.
        kickoff_time_input: The datetime input a schedule (and a time partition) fills in.
        cron_schedule: The launch plan's cron schedule, when it has one.
    """

    name: str
    project: str | None = None
    domain: str | None = None
    version: str | None = None
    outputs: Mapping[str, str] = {}
    inputs: Mapping[str, str] = {}
    description: str | None = None
    kickoff_time_input: str | None = None
    cron_schedule: str | None = None

    @property
    def short_name(self) -> str:
        """The last dotted part of the name: ``hello`` for ``examples.workflows.hello``."""
        return self.name.rsplit(".", 1)[-1]


class FlyteOutputProps(NamedTuple):
    """One output of one launch plan: the unit the translator turns into an asset.

    ``output_name`` is ``None`` for a launch plan that has no outputs.
    """

    launch_plan: FlyteLaunchPlanProps
    output_name: str | None
    output_type: str | None


OUTPUT_TYPE_WORDS = frozenset(
    {
        # Flyte's simple types.
        "none",
        "integer",
        "float",
        "string",
        "boolean",
        "datetime",
        "duration",
        "binary",
        "error",
        "struct",
        # Its other types, as flyte_bridge.literals.describe_type and type_name write them.
        "list",
        "dict",
        "enum",
        "union",
        "file",
        "directory",
        "pickle",
        "structureddataset",
        "structured_dataset",
        "schema",
        "record",
        "any",
        "unknown",
    }
)
"""The words an output's type may start with (any case), before an optional ``[...]``,
``<...>`` or ``(...)`` with what it holds."""

_TYPE_TEXT = re.compile(r"\s*([A-Za-z_]+)(?: type)?\s*(?:[\[<(].*)?", re.DOTALL)


def check_launch_plan_props(launch_plan: Any) -> FlyteLaunchPlanProps:
    """``launch_plan`` when it is well-formed props.

    Output types are checked for being Flyte type names, not against the launch plan (which is
    not read here); they only document the assets.

    Raises:
        dagster.DagsterInvalidDefinitionError: Not props, no name, or ``outputs`` not a mapping
            of output names to types (the message says what was expected).
    """
    if not isinstance(launch_plan, FlyteLaunchPlanProps):
        raise dg.DagsterInvalidDefinitionError(
            f"Expected FlyteLaunchPlanProps, got {type(launch_plan).__name__}"
        )
    name = launch_plan.name
    if not isinstance(name, str) or not name.strip():
        raise dg.DagsterInvalidDefinitionError(
            f"FlyteLaunchPlanProps.name must be a launch plan name such as 'hello.hello_wf', "
            f"got {name!r}"
        )
    outputs = launch_plan.outputs
    if not isinstance(outputs, Mapping):
        raise dg.DagsterInvalidDefinitionError(
            f"outputs of launch plan {name} must map each output name to its type, such as "
            f"{{'o0': 'STRING'}}; got {type(outputs).__name__} {outputs!r}"
        )
    for output, type_text in outputs.items():
        if not isinstance(output, str) or not output:
            raise dg.DagsterInvalidDefinitionError(
                f"outputs of launch plan {name} must be keyed by output name (text such as "
                f"'o0'), got {output!r}"
            )
        match = _TYPE_TEXT.fullmatch(type_text) if isinstance(type_text, str) else None
        if match is None or match.group(1).lower() not in OUTPUT_TYPE_WORDS:
            raise dg.DagsterInvalidDefinitionError(
                f"output {output!r} of launch plan {name} has type {type_text!r}; expected a "
                f"Flyte type: one of {', '.join(sorted(OUTPUT_TYPE_WORDS))} (any case), "
                "optionally followed by what it holds, as in List[STRING]"
            )
    if not isinstance(launch_plan.inputs, Mapping):
        raise dg.DagsterInvalidDefinitionError(
            f"inputs of launch plan {name} must map each input name to its type, got "
            f"{type(launch_plan.inputs).__name__} {launch_plan.inputs!r}"
        )
    return launch_plan


def output_props(launch_plan: FlyteLaunchPlanProps) -> list[FlyteOutputProps]:
    """One :class:`FlyteOutputProps` per output, or a single one for a launch plan without any.

    Raises:
        dagster.DagsterInvalidDefinitionError: The props are malformed (see
            :func:`check_launch_plan_props`).
    """
    check_launch_plan_props(launch_plan)
    if not launch_plan.outputs:
        return [FlyteOutputProps(launch_plan, None, None)]
    return [
        FlyteOutputProps(launch_plan, name, type_name)
        for name, type_name in launch_plan.outputs.items()
    ]


class DagsterFlyteTranslator:
    """Turns a launch plan output into an ``AssetSpec``; subclass and override to customise.

    The default key is the launch plan's dotted name split into parts followed by the output
    name (``examples/workflows/hello/o0``); the group is the launch plan's short name. Keep the
    ``flyte/...`` metadata the default spec carries when overriding: the assets read the launch
    plan and output from it.
    """

    def get_asset_spec(self, props: FlyteOutputProps) -> dg.AssetSpec:
        """The spec of the asset standing for ``props``."""
        launch_plan = props.launch_plan
        key_parts = launch_plan.name.split(".")
        if props.output_name is not None:
            key_parts.append(props.output_name)
        description = f"Flyte launch plan {launch_plan.name}"
        if props.output_name is not None:
            description = f"Output {props.output_name!r} of Flyte launch plan {launch_plan.name}"
        if launch_plan.description:
            description = f"{description}: {launch_plan.description}"
        return dg.AssetSpec(
            key=dg.AssetKey(key_parts),
            description=description,
            group_name=_group_name(launch_plan),
            kinds={"flyte"},
            metadata=launch_plan_metadata(props),
        )


def launch_plan_metadata(props: FlyteOutputProps) -> dict[str, Any]:
    """The ``flyte/...`` metadata that ties a spec to its launch plan and output."""
    launch_plan = props.launch_plan
    metadata: dict[str, Any] = {LAUNCH_PLAN_KEY: launch_plan.name}
    optional = {
        PROJECT_KEY: launch_plan.project,
        DOMAIN_KEY: launch_plan.domain,
        VERSION_KEY: launch_plan.version,
        OUTPUT_KEY: props.output_name,
        OUTPUT_TYPE_KEY: props.output_type,
        KICKOFF_TIME_INPUT_KEY: launch_plan.kickoff_time_input,
    }
    metadata.update({key: value for key, value in optional.items() if value is not None})
    return metadata


def _group_name(launch_plan: FlyteLaunchPlanProps) -> str:
    """A valid Dagster group name from the launch plan's short name."""
    cleaned = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in launch_plan.short_name)
    return cleaned or "flyte"
