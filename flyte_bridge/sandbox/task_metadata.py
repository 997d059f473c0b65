"""How flyteadmin folds a task event's logs and metadata into the task execution's closure.

An array node reports its items as ``metadata.external_resources`` and sends, with each new
phase version, only the entries that changed. flyteadmin keeps one entry per (index, retry
attempt), sorted by that key: a new key is inserted, a known one is updated in place (phase,
external id, cache status, custom info, logs merged). Log lists merge the same way everywhere:
the new list first, then every older entry that no new entry replaces by URI or by name.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from flyteidl.core import catalog_pb2, execution_pb2
from flyteidl.event import event_pb2

TaskPhase = execution_pb2.TaskExecution.Phase
_TERMINAL = {TaskPhase.SUCCEEDED, TaskPhase.FAILED, TaskPhase.ABORTED}
_PENDING = {TaskPhase.QUEUED, TaskPhase.INITIALIZING}


def merge_logs(
    existing: Sequence[execution_pb2.TaskLog], latest: Sequence[execution_pb2.TaskLog]
) -> list[execution_pb2.TaskLog]:
    """The latest logs, then the existing ones no latest log replaces (same URI or name)."""
    if not latest:
        return list(existing)
    uris = {log.uri for log in latest}
    names = {log.name for log in latest if log.name}
    kept = [log for log in existing if log.uri not in uris and log.name not in names]
    return [*latest, *kept]


def logs_for_phase(
    logs: Iterable[execution_pb2.TaskLog], phase: int
) -> list[execution_pb2.TaskLog]:
    """Drops logs hidden once finished (terminal phases) or not shown while pending."""
    return [
        log
        for log in logs
        if not (phase in _TERMINAL and log.HideOnceFinished)
        and not (phase in _PENDING and not log.ShowWhilePending)
    ]


def merge_metadata(
    existing: event_pb2.TaskExecutionMetadata,
    latest: event_pb2.TaskExecutionMetadata,
    *,
    phase: int,
    phase_changed: bool,
) -> None:
    """Merges ``latest`` into ``existing`` in place, as flyteadmin's task execution update does."""
    if latest.generated_name:
        existing.generated_name = latest.generated_name
    if latest.plugin_identifier:
        existing.plugin_identifier = latest.plugin_identifier
    if latest.instance_class != event_pb2.TaskExecutionMetadata.DEFAULT:
        existing.instance_class = latest.instance_class
    del existing.resource_pool_info[:]
    existing.resource_pool_info.extend(latest.resource_pool_info)
    resources = list(existing.external_resources)
    keys = [(resource.index, resource.retry_attempt) for resource in resources]
    for resource in latest.external_resources:
        key = (resource.index, resource.retry_attempt)
        position = bisect.bisect_left(keys, key)
        if position < len(keys) and keys[position] == key:
            _merge_resource(resources[position], resource)
        else:
            copy = event_pb2.ExternalResourceInfo()
            copy.CopyFrom(resource)
            resources.insert(position, copy)
            keys.insert(position, key)
    if phase_changed:
        for resource in resources:
            logs = logs_for_phase(resource.logs, phase)
            del resource.logs[:]
            resource.logs.extend(logs)
    del existing.external_resources[:]
    existing.external_resources.extend(resources)


def _merge_resource(
    existing: event_pb2.ExternalResourceInfo, latest: event_pb2.ExternalResourceInfo
) -> None:
    if latest.external_id:
        existing.external_id = latest.external_id
    existing.phase = latest.phase
    if latest.cache_status != catalog_pb2.CACHE_DISABLED:
        existing.cache_status = latest.cache_status
    logs = merge_logs(existing.logs, latest.logs)
    del existing.logs[:]
    existing.logs.extend(logs)
    if latest.HasField("custom_info"):
        existing.custom_info.CopyFrom(latest.custom_info)
