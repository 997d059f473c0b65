"""The sandbox server answers the basic admin RPCs over real gRPC."""

from __future__ import annotations

import grpc
import pytest
from flyteidl.admin import project_pb2, version_pb2
from flyteidl.service import auth_pb2, auth_pb2_grpc


def test_list_projects_returns_the_seeded_flytesnacks_project_with_three_domains(admin):
    projects = admin.ListProjects(project_pb2.ProjectListRequest())

    flytesnacks = [p for p in projects.projects if p.id == "flytesnacks"]
    assert len(flytesnacks) == 1
    assert [d.id for d in flytesnacks[0].domains] == ["development", "staging", "production"]


def test_get_domains_lists_development_staging_production(admin):
    response = admin.GetDomains(project_pb2.GetDomainRequest())

    assert [d.name for d in response.domains] == ["development", "staging", "production"]


def test_get_version_names_a_control_plane_version(admin):
    response = admin.GetVersion(version_pb2.GetVersionRequest())

    assert response.control_plane_version.Version.startswith("v1.16")


def test_flytekit_accept_metadata_is_ignored(admin):
    response = admin.GetDomains(
        project_pb2.GetDomainRequest(), metadata=(("accept", "application/grpc"),)
    )

    assert len(response.domains) == 3


def test_an_rpc_the_sandbox_lacks_answers_unimplemented_not_unknown(admin):
    from flyteidl.admin import project_attributes_pb2

    with pytest.raises(grpc.RpcError) as caught:
        admin.GetProjectAttributes(project_attributes_pb2.ProjectAttributesGetRequest())

    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_public_client_config_is_served_without_auth(sandbox_channel):
    stub = auth_pb2_grpc.AuthMetadataServiceStub(sandbox_channel)

    response = stub.GetPublicClientConfig(auth_pb2.PublicClientAuthConfigRequest())

    assert response.client_id == "flytectl"
    assert response.authorization_metadata_key == "flyte-authorization"
