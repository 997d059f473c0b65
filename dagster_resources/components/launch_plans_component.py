"""The "Flyte launch plans as assets" component type.

.. code-block:: yaml

    type: dagster_resources.FlyteLaunchPlansComponent
    attributes:
      flyte:
        endpoint: "{{ env.FLYTE_ENDPOINT }}"
        insecure: true
        default_project: flytesnacks
        default_domain: development
      launch_plans:
        - name: hello.hello_wf
          outputs: {o0: string}
          inputs: {name: Dagster}
      create_sensor: true

The type is registered through the ``dagster_dg_cli.registry_modules`` entry point, which the
``dg`` CLI reads. The project's tests check it with Dagster's own entry-point discovery, not with
``dg`` itself: ``dagster-dg-cli`` is not in the dev environment, because its releases pin an
exact ``dagster`` and lag the newest one.
"""

import datetime as dt
import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
from croniter import croniter
from dagster.components.utils.translation import TranslationFn, TranslationFnResolver
from pydantic import ConfigDict, ValidationError, model_validator

from dagster_resources.asset_decorator import build_flyte_assets_definition
from dagster_resources.components.scaffolder import FlyteLaunchPlansScaffolder
from dagster_resources.launch_plans import load_flyte_launch_plan_props
from dagster_resources.resource import (
    FlyteResource,
    NameLength,
    Retries,
    Seconds,
    masked_repr_args,
)
from dagster_resources.sensor_builder import build_flyte_execution_sensor
from dagster_resources.translator import (
    DagsterFlyteTranslator,
    FlyteLaunchPlanProps,
    FlyteOutputProps,
)


class FlyteConnectionModel(dg.Model, dg.Resolvable):
    """The ``flyte`` block: the fields of :class:`FlyteResource` (write secrets as env vars).

    A field left out takes the resource's default. Values are checked as the resource checks
    them, when the YAML loads.
    """

    # Validation errors would otherwise quote the input, secrets included.
    model_config = ConfigDict(hide_input_in_errors=True)

    endpoint: str | None = None
    insecure: bool | None = None
    ca_cert_path: str | None = None
    flytekit_config: str | None = None
    auth_mode: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    token: str | None = None
    client_secret_env_var: str | None = None
    token_env_var: str | None = None
    auth_command: list[str] | None = None
    scopes: list[str] | None = None
    audience: str | None = None
    token_endpoint: str | None = None
    allow_plaintext: bool | None = None
    default_project: str | None = None
    default_domain: str | None = None
    console_url: str | None = None
    rpc_timeout: Seconds | None = None
    max_retries: Retries | None = None
    max_execution_name_length: NameLength | None = None
    poll_interval: Seconds | None = None
    wait_timeout: Seconds | None = None
    terminate_on_interrupt: bool | None = None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        return masked_repr_args(super().__repr_args__())

    def to_resource(self) -> FlyteResource:
        """The resource these fields describe."""
        return FlyteResource(**self.model_dump(exclude_none=True))


def _resolve_flyte_block(context: dg.ResolutionContext, block: Any) -> FlyteConnectionModel | None:
    """The ``flyte`` block, its templates filled in, checked as one model.

    The YAML schema takes the block as any mapping, so that a bad field is checked here, once:
    checked by Dagster's schema, which also takes a template string for the block and for each
    field, one bad ``poll_interval`` was three errors (one per alternative that did not fit),
    quoting the whole block, literal secrets included.

    Raises:
        DagsterInvalidDefinitionError: naming each bad field and what it takes.
    """
    if block is None:
        return None
    resolved = context.resolve_value(block)
    if not isinstance(resolved, Mapping):
        raise dg.DagsterInvalidDefinitionError(
            "the flyte block must be a mapping of FlyteResource fields (endpoint, insecure, "
            f"default_project...), got {type(resolved).__name__}"
        )
    try:
        block_model = FlyteConnectionModel.model_validate(dict(resolved))
    except ValidationError as error:
        problems = [_field_problem(detail) for detail in error.errors()]
        raise dg.DagsterInvalidDefinitionError(
            "the flyte block has "
            + ("a bad field: " if len(problems) == 1 else f"{len(problems)} bad fields: ")
            + "; ".join(problems)
        ) from None
    # The checks across fields (credentials without a mode, credentials over plaintext) are
    # the resource's: made here, they are reported as the field errors are, with the YAML
    # location, instead of as a bare ValidationError when the definitions are built.
    try:
        block_model.to_resource()
    except ValidationError as error:
        problems = [_model_problem(detail) for detail in error.errors()]
        raise dg.DagsterInvalidDefinitionError(
            "the flyte block's fields do not fit together: " + "; ".join(problems)
        ) from None
    return block_model


def _model_problem(detail: Mapping[str, Any]) -> str:
    """One error of the resource's checks across fields, without pydantic's prefix (the
    resource hides inputs in its errors, so no value, no secret, is quoted)."""
    cause = detail.get("ctx", {}).get("error")
    message = str(cause) if cause is not None else str(detail["msg"])
    if detail["loc"]:
        return f"{'.'.join(str(part) for part in detail['loc'])}: {message}"
    return message


def _field_problem(detail: Mapping[str, Any]) -> str:
    """One validation error of the flyte block: the field, what is wrong, what it takes."""
    field = ".".join(str(part) for part in detail["loc"])
    fields = FlyteResource.model_fields
    if detail["type"] == "extra_forbidden":
        close = difflib.get_close_matches(field, fields, n=1)
        hint = f"did you mean {close[0]}?" if close else f"the fields are {', '.join(fields)}"
        return f"{field} is not a field of FlyteResource ({hint})"
    described = fields.get(str(detail["loc"][0])) if detail["loc"] else None
    about = f" ({described.description})" if described and described.description else ""
    return f"{field}: {detail['msg']}{about}"


_FLYTE_BLOCK_SCHEMA = {
    key: value
    for key, value in FlyteConnectionModel.model().model_json_schema().items()
    if key in ("properties", "additionalProperties")
}
"""The fields of the block, for editors and ``dg`` (the block itself is checked on loading)."""


DAILY_FMT = "%Y-%m-%d"
"""The partition key format of a cron that ticks at most once a day (Dagster's daily one)."""

SUB_DAILY_FMT = "%Y-%m-%d-%H:%M"
"""The format of a cron that ticks more than once a day (Dagster's hourly one)."""

FMT_CHECKED_TICKS = 1000
"""Ticks after ``start`` whose keys must differ for a ``fmt`` to be fine enough."""


class TimePartitionsModel(dg.Model, dg.Resolvable):
    """Time-window partitions: one partition per tick of ``cron_schedule`` since ``start``.

    ``fmt`` is the partition keys' format: by default ``%Y-%m-%d`` for a cron that ticks at
    most daily and ``%Y-%m-%d-%H:%M`` for one that ticks more often, as Dagster's daily and
    hourly partitions have; a given one must tell every tick apart. ``start`` is written in
    ``fmt`` or as an ISO 8601 date or time; ``timezone`` (an IANA name, UTC by default) is
    where the cron ticks.
    """

    cron_schedule: str
    start: str
    fmt: str | None = None
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _checked(self) -> "TimePartitionsModel":
        """Refuses, when the YAML loads, what Dagster would refuse only when validating."""
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone {self.timezone!r} is not a time zone name such as UTC or Europe/Paris"
            ) from None
        if not croniter.is_valid(self.cron_schedule):
            raise ValueError(
                f"cron_schedule {self.cron_schedule!r} is not a cron expression such as "
                "'0 * * * *' (hourly) or '0 6 * * *' (daily at 06:00)"
            )
        start = self.start_time()
        if self.fmt is not None:
            clash = _same_key_ticks(self.cron_schedule, self.fmt, start.replace(tzinfo=zone))
            if clash is not None:
                first, second = clash
                raise ValueError(
                    f"fmt {self.fmt!r} is not fine enough for cron_schedule "
                    f"{self.cron_schedule!r}: the ticks {first.isoformat()} and "
                    f"{second.isoformat()} both have the partition key "
                    f"{first.strftime(self.fmt)!r}; use {self.default_fmt()!r} (or leave fmt out)"
                )
        return self

    def default_fmt(self) -> str:
        """The format Dagster's own partitions of this granularity have."""
        minutes, hours = croniter(self.cron_schedule).expanded[:2]
        ticks_more_than_daily = any(field == ["*"] or len(field) > 1 for field in (minutes, hours))
        return SUB_DAILY_FMT if ticks_more_than_daily else DAILY_FMT

    def effective_fmt(self) -> str:
        """``fmt``, or the default for the cron."""
        return self.fmt or self.default_fmt()

    def start_time(self) -> dt.datetime:
        """``start`` as a naive time of ``timezone``: read with the format, else as ISO 8601."""
        try:
            return dt.datetime.strptime(self.start, self.effective_fmt())
        except ValueError:
            pass
        try:
            moment = dt.datetime.fromisoformat(self.start.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"start {self.start!r} is neither in the format {self.effective_fmt()!r} nor an "
                "ISO 8601 date or time such as 2024-01-01 or 2024-01-01T06:00"
            ) from None
        if moment.tzinfo is not None:
            moment = moment.astimezone(ZoneInfo(self.timezone)).replace(tzinfo=None)
        return moment

    def to_partitions_def(self) -> dg.TimeWindowPartitionsDefinition:
        """The partitions definition these fields describe."""
        return dg.TimeWindowPartitionsDefinition(
            cron_schedule=self.cron_schedule,
            start=self.start_time(),
            fmt=self.effective_fmt(),
            timezone=self.timezone,
        )


def _same_key_ticks(
    cron: str, fmt: str, start: dt.datetime
) -> tuple[dt.datetime, dt.datetime] | None:
    """Two of the first ticks after ``start`` that ``fmt`` writes as one key, or None.

    The hour repeated when summer time ends is told apart by its UTC offset, as Dagster's keys
    do."""
    ticks = croniter(cron, start - dt.timedelta(seconds=1))
    seen: dict[tuple[str, Any], dt.datetime] = {}
    for _ in range(FMT_CHECKED_TICKS):
        tick = ticks.get_next(dt.datetime)
        key = (tick.strftime(fmt), tick.utcoffset())
        if key in seen:
            return seen[key], tick
        seen[key] = tick
    return None


class FlyteLaunchPlanModel(dg.Model, dg.Resolvable):
    """One launch plan. Without ``outputs`` its interface is read from Flyte at load time."""

    name: str
    project: str | None = None
    domain: str | None = None
    version: str | None = None
    outputs: dict[str, str] | None = None
    inputs: dict[str, Any] = {}
    description: str | None = None
    kickoff_time_input: str | None = None
    cron_schedule: str | None = None
    partitions: TimePartitionsModel | None = None
    backfill_strategy: Literal["flyte_backfill", "per_partition"] | None = None

    def to_props(self) -> FlyteLaunchPlanProps:
        """The launch plan as written in the YAML."""
        return FlyteLaunchPlanProps(
            name=self.name,
            project=self.project,
            domain=self.domain,
            version=self.version,
            outputs=dict(self.outputs or {}),
            description=self.description,
            kickoff_time_input=self.kickoff_time_input,
            cron_schedule=self.cron_schedule,
        )


def _translation_vars(props: FlyteOutputProps) -> Mapping[str, Any]:
    return {
        "launch_plan": props.launch_plan.name,
        "output": props.output_name,
        "props": props,
    }


class _ComponentTranslator(DagsterFlyteTranslator):
    """The default translator, then the YAML ``translation`` on top."""

    def __init__(self, translation: TranslationFn[FlyteOutputProps] | None) -> None:
        self.translation = translation

    def get_asset_spec(self, props: FlyteOutputProps) -> dg.AssetSpec:
        spec = super().get_asset_spec(props)
        return self.translation(spec, props) if self.translation else spec


@dg.scaffold_with(FlyteLaunchPlansScaffolder)
@dataclass
class FlyteLaunchPlansComponent(dg.Component, dg.Resolvable):
    """Flyte launch plans as assets: one asset per launch plan output.

    Materializing an asset launches its launch plan with the given ``inputs``, waits, and
    reports every selected output with the execution's URL, id, phase, duration and a preview
    of the value. With ``create_sensor`` a sensor also reports executions started outside
    Dagster. ``translation`` changes the asset specs; ``{{ launch_plan }}`` and ``{{ output }}``
    are available in it. Without a ``flyte`` block the assets use the ``FlyteResource`` that
    the code location binds to ``resource_key``; the sensor needs the block.

    Launch plans listed without ``outputs`` are read from Flyte every time the definitions load;
    the component keeps no state file of them (list the outputs to load offline).
    """

    launch_plans: Sequence[FlyteLaunchPlanModel]
    flyte: Annotated[
        FlyteConnectionModel | None,
        dg.Resolver(
            _resolve_flyte_block,
            model_field_type=dict[str, Any] | None,
            description="The FlyteResource fields of the component's own resource.",
            json_schema_extra=_FLYTE_BLOCK_SCHEMA,
        ),
    ] = None
    resource_key: str = "flyte"
    create_sensor: bool = False
    translation: (
        Annotated[
            TranslationFn[FlyteOutputProps],
            TranslationFnResolver[FlyteOutputProps](_translation_vars),
        ]
        | None
    ) = None

    def get_launch_plan_props(self, resource: FlyteResource | None) -> list[FlyteLaunchPlanProps]:
        """Props of every launch plan: from the YAML, or read from Flyte when no outputs."""
        missing = [model for model in self.launch_plans if model.outputs is None]
        if missing and resource is None:
            raise dg.DagsterInvalidDefinitionError(
                f"Launch plan {missing[0].name} lists no outputs, so they are read from Flyte "
                "at load time, which needs the component's flyte block"
            )
        fetched: dict[tuple[str, str | None, str | None], FlyteLaunchPlanProps] = {}
        for model in missing:
            (props,) = load_flyte_launch_plan_props(
                resource, [model.name], project=model.project, domain=model.domain
            )
            fetched[(model.name, model.project, model.domain)] = props
        result = []
        for model in self.launch_plans:
            props = fetched.get((model.name, model.project, model.domain))
            if props is None:
                result.append(model.to_props())
            else:
                result.append(
                    props._replace(
                        project=model.project,
                        domain=model.domain,
                        version=model.version,
                        description=model.description or props.description,
                        kickoff_time_input=model.kickoff_time_input or props.kickoff_time_input,
                        cron_schedule=model.cron_schedule or props.cron_schedule,
                    )
                )
        return result

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """One multi-asset per launch plan, the resource (with a flyte block), the sensor."""
        resource = self.flyte.to_resource() if self.flyte else None
        translator = _ComponentTranslator(self.translation)
        all_props = self.get_launch_plan_props(resource)
        partitions = {
            model.name: model.partitions.to_partitions_def() if model.partitions else None
            for model in self.launch_plans
        }
        assets = [
            build_flyte_assets_definition(
                props,
                inputs=model.inputs,
                # YAML holds no datetimes or durations: their text is read as the input's type.
                inputs_from_text=True,
                resource_key=self.resource_key,
                translator=translator,
                partitions_def=partitions[model.name],
                backfill_strategy=model.backfill_strategy,
            )
            for model, props in zip(self.launch_plans, all_props, strict=True)
        ]
        sensors = []
        if self.create_sensor:
            if resource is None:
                raise dg.DagsterInvalidDefinitionError(
                    "create_sensor needs the component's flyte block to reach Flyte"
                )
            sensors.append(
                build_flyte_execution_sensor(
                    flyte=resource,
                    launch_plans=all_props,
                    translator=translator,
                    partitions_def=partitions,
                )
            )
        resources = {self.resource_key: resource} if resource else {}
        return dg.Definitions(assets=assets, sensors=sensors, resources=resources)
