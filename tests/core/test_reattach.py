"""launch_or_reattach decisions, on a stand-in client that only knows executions by name."""

from dataclasses import dataclass, field

import pytest

from flyte_bridge._requests import scope_of
from flyte_bridge.client import FlyteClient
from flyte_bridge.config import ClientConfig
from flyte_bridge.errors import FlyteConflictError, FlyteInvalidInputError
from flyte_bridge.naming import execution_name
from flyte_bridge.reattach import latest_execution, launch_or_find, launch_or_reattach

STEP = ("daily", "launch", "manual__2026-07-15", -1)


@dataclass
class Run:
    name: str
    phase_name: str

    @property
    def id(self):
        return f"flytesnacks/development/{self.name}"

    @property
    def is_done(self):
        return self.phase_name in ("SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT")

    @property
    def is_successful(self):
        return self.phase_name == "SUCCEEDED"


@dataclass
class Admin:
    runs: dict = field(default_factory=dict)
    launched: list = field(default_factory=list)
    recovered: list = field(default_factory=list)
    config: ClientConfig = field(default_factory=ClientConfig.for_sandbox)

    def _scope(self, project, domain):
        return scope_of(project, domain, self.config.default_project, self.config.default_domain)

    def find_execution(self, name, project=None, domain=None):
        return self.runs.get(name)

    def launch(self, name):
        self.launched.append(name)
        self.runs[name] = Run(name, "QUEUED")
        return self.runs[name]

    def recover(self, previous, name):
        self.recovered.append((previous.name, name))
        self.runs[name] = Run(name, "QUEUED")
        return self.runs[name]


def generation(n, max_length=63):
    return execution_name(*STEP, generation=n, max_length=max_length)


def with_runs(*phases):
    admin = Admin()
    for n, phase in enumerate(phases):
        admin.runs[generation(n)] = Run(generation(n), phase)
    return admin


def test_a_first_try_launches_generation_zero():
    admin = with_runs()

    decision = launch_or_reattach(admin, STEP, admin.launch)

    assert (decision.action, decision.generation) == ("launched", 0)
    assert admin.launched == [generation(0)]


def test_a_retry_reattaches_to_a_run_still_going_without_launching():
    admin = with_runs("RUNNING")

    decision = launch_or_reattach(admin, STEP, admin.launch)

    assert (decision.action, decision.execution.name) == ("reattached", generation(0))
    assert admin.launched == []


def test_a_retry_reuses_a_run_that_succeeded():
    admin = with_runs("SUCCEEDED")

    decision = launch_or_reattach(admin, STEP, admin.launch)

    assert decision.action == "reused"
    assert admin.launched == []


@pytest.mark.parametrize("phase", ["FAILED", "ABORTED", "TIMED_OUT"])
def test_after_a_run_that_did_not_succeed_the_next_generation_is_launched(phase):
    admin = with_runs(phase)

    decision = launch_or_reattach(admin, STEP, admin.launch)

    assert (decision.action, decision.generation) == ("launched", 1)
    assert admin.launched == [generation(1)]
    assert decision.previous.name == generation(0)


def test_a_retry_right_after_a_kill_launches_the_next_generation_not_the_aborting_run():
    admin = with_runs("ABORTING")

    decision = launch_or_reattach(admin, STEP, admin.launch)

    assert (decision.action, decision.generation) == ("launched", 1)
    assert admin.launched == [generation(1)]
    assert decision.previous.phase_name == "ABORTING"


def test_recover_after_a_kill_launches_afresh_while_the_run_is_still_aborting():
    admin = with_runs("FAILED", "ABORTING")

    decision = launch_or_reattach(admin, STEP, admin.launch, recover=True)

    # An aborting run's nodes are still changing: there is nothing settled to recover from.
    assert (decision.action, decision.generation) == ("launched", 2)
    assert admin.recovered == []
    assert admin.launched == [generation(2)]


def test_names_fit_the_clients_max_execution_name_length():
    admin = Admin(config=ClientConfig.for_sandbox(max_execution_name_length=20))
    for n, phase in enumerate(["FAILED", "ABORTED"]):
        admin.runs[generation(n, 20)] = Run(generation(n, 20), phase)

    decision = launch_or_reattach(admin, STEP, admin.launch)
    other = launch_or_reattach(admin, (*STEP[:1], "another_task", *STEP[2:]), admin.launch)

    assert (decision.action, decision.generation) == ("launched", 2)
    assert admin.launched == [generation(2, 20), other.execution.name]
    assert all(len(name) <= 20 for name in admin.launched)
    assert other.execution.name != generation(0, 20)
    assert latest_execution(admin, STEP).name == generation(2, 20)


def test_an_explicit_max_length_wins_over_the_clients():
    admin = Admin(config=ClientConfig.for_sandbox(max_execution_name_length=20))

    decision = launch_or_reattach(admin, STEP, admin.launch, max_length=40)

    assert decision.execution.name == generation(0, 40)


def test_recover_recovers_the_failed_run_under_the_next_name():
    admin = with_runs("FAILED", "FAILED")

    decision = launch_or_reattach(admin, STEP, admin.launch, recover=True)

    assert decision.action == "recovered"
    assert admin.recovered == [(generation(1), generation(2))]
    assert admin.launched == []


def test_recover_on_a_first_try_launches():
    admin = with_runs()

    assert launch_or_reattach(admin, STEP, admin.launch, recover=True).action == "launched"


def test_latest_execution_is_the_highest_generation():
    assert latest_execution(with_runs("FAILED", "RUNNING"), STEP).name == generation(1)
    assert latest_execution(with_runs(), STEP) is None


# ------------------------------------------------------------------------- launch_or_find

FIXED = "nightly-load"


def launch_like_the_client(admin):
    """client.launch: an existing name (same entity and inputs) gives back that execution."""

    def launch(name):
        return admin.runs[name] if name in admin.runs else admin.launch(name)

    return launch


def test_a_fixed_name_not_taken_yet_is_launched():
    admin = Admin()

    decision = launch_or_find(admin, FIXED, launch_like_the_client(admin))

    assert (decision.action, decision.execution.name) == ("launched", FIXED)
    assert decision.is_new and admin.launched == [FIXED]


@pytest.mark.parametrize(
    ("phase", "action"),
    [
        ("RUNNING", "reattached"),
        ("QUEUED", "reattached"),
        ("SUCCEEDED", "reused"),
        ("FAILED", "ended"),
        ("ABORTED", "ended"),
        ("TIMED_OUT", "ended"),
        ("ABORTING", "ended"),
    ],
)
def test_a_fixed_name_already_taken_is_followed_never_launched_again(phase, action):
    admin = Admin(runs={FIXED: Run(FIXED, phase)})

    decision = launch_or_find(admin, FIXED, launch_like_the_client(admin))

    assert (decision.action, decision.execution.phase_name) == (action, phase)
    assert not decision.is_new and admin.launched == []


def test_a_fixed_name_taken_by_another_launch_is_the_launchs_error():
    admin = Admin(runs={FIXED: Run(FIXED, "RUNNING")})

    def conflicting(name):
        raise FlyteConflictError(f"execution name {name!r} is taken", subject=name)

    with pytest.raises(FlyteConflictError, match="is taken"):
        launch_or_find(admin, FIXED, conflicting)


@pytest.mark.parametrize("decide", [launch_or_reattach, launch_or_find])
def test_without_a_project_and_domain_it_says_where_to_set_them_before_any_call(decide):
    # Nothing listens on port 1: a call would fail as unreachable, not as a missing scope.
    client = FlyteClient(ClientConfig(endpoint="127.0.0.1:1", insecure=True, max_retries=0))
    step = STEP if decide is launch_or_reattach else "fixed-name"

    with pytest.raises(FlyteInvalidInputError) as raised:
        decide(client, step, lambda name: pytest.fail("launched without a scope"))

    assert "no project and domain to run in" in raised.value.message
    assert "the Airflow connection's project and domain extras" in raised.value.message
    client.close()
