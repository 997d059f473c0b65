"""Projects: listing them, and checking a project and domain before trusting an empty list."""

from __future__ import annotations

import pytest

from flyte_bridge.errors import FlyteNotFoundError
from flyte_bridge.models import Project


def test_list_projects_returns_the_seeded_project_with_its_domains(client):
    projects = client.list_projects()

    assert Project("flytesnacks", "flytesnacks", ("development", "staging", "production")) in [
        Project(p.id, p.name, p.domains) for p in projects
    ]


def test_check_scope_passes_a_registered_project_and_domain(client):
    projects = client.check_scope("flytesnacks", "staging")

    assert "flytesnacks" in [p.id for p in projects]


def test_check_scope_names_an_unknown_project_and_the_registered_ones(client):
    with pytest.raises(FlyteNotFoundError, match=r"project 'flytesnaks' .*flytesnacks") as caught:
        client.check_scope("flytesnaks", "development")

    assert caught.value.subject == "flytesnaks"


def test_check_scope_names_an_unknown_domain_of_a_project_and_its_domains(client):
    with pytest.raises(FlyteNotFoundError, match=r"domain 'dev' .*'flytesnacks'.*development"):
        client.check_scope("flytesnacks", "dev")


def test_check_scope_without_a_project_looks_for_the_domain_in_every_project(client):
    client.check_scope(None, "production")
    with pytest.raises(FlyteNotFoundError, match="domain 'qa' is not a domain of any project"):
        client.check_scope(None, "qa")
