"""Projects and domains: the prerequisites of every registration and execution."""

from __future__ import annotations

import re

from flyteidl.admin import common_pb2, project_pb2

from flyte_bridge.naming import LABEL_KEY, LABEL_VALUE
from flyte_bridge.sandbox import query as q
from flyte_bridge.sandbox.db import Database, now_ns
from flyte_bridge.sandbox.status import already_exists, invalid, missing, not_found

DEFAULT_DOMAINS = ("development", "staging", "production")
DEFAULT_PROJECTS = ("flytesnacks",)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LISTING = q.Listing(q.PROJECT, "p")


def validate_labels(labels: common_pb2.Labels, *, max_entries: int = 16) -> None:
    """Refuses labels that Kubernetes would refuse (flyteadmin checks the same)."""
    if len(labels.values) > max_entries:
        raise invalid(f"labels may have at most {max_entries} entries")
    for key, value in labels.values.items():
        if len(key.split("/")[-1]) > 63 or not LABEL_KEY.match(key):
            raise invalid(f"invalid label key {key!r}: expected a Kubernetes label name")
        if len(value) > 63 or not LABEL_VALUE.match(value):
            raise invalid(f"invalid label value {value!r} for key {key!r}")


class Projects:
    """Project records in the database and the fixed list of domains."""

    def __init__(self, db: Database, domains: tuple[str, ...] = DEFAULT_DOMAINS) -> None:
        self.db = db
        self.domains = domains

    def seed(self, identifiers: tuple[str, ...] = DEFAULT_PROJECTS) -> None:
        for identifier in identifiers:
            if not self._row(identifier):
                self.register(project_pb2.Project(id=identifier, name=identifier))

    def domain_list(self) -> list[project_pb2.Domain]:
        return [project_pb2.Domain(id=d, name=d) for d in self.domains]

    def require_active(self, project: str, domain: str) -> None:
        """Checks that the project exists and is active and the domain is configured."""
        row = self._row(project)
        if row is None:
            raise invalid(
                f"failed to validate that project [{project}] and domain [{domain}] are registered"
            )
        if row["state"] != project_pb2.Project.ACTIVE:
            raise invalid(f"project [{project}] is not active")
        if domain not in self.domains:
            raise invalid(f"domain [{domain}] is unrecognized by system")

    def _row(self, identifier: str):
        return self.db.query_one("SELECT * FROM projects WHERE identifier = ?", (identifier,))

    def _validate(self, project: project_pb2.Project) -> None:
        if not project.id:
            raise missing("project_id")
        if len(project.id) > 63 or not _DNS_LABEL.match(project.id):
            raise invalid(
                f"invalid project id {project.id!r}: expected a DNS-1123 label (lower-case "
                "letters, digits and '-', at most 63 characters)"
            )
        if not project.name:
            raise missing("project_name")
        if len(project.name) > 64:
            raise invalid("project_name must be at most 64 characters")
        if len(project.description) > 300:
            raise invalid("project_description must be at most 300 characters")
        validate_labels(project.labels)
        if project.domains:
            raise invalid(
                "Domains are currently only set system wide. Please retry without domains included "
                "in your request."
            )

    def register(self, project: project_pb2.Project) -> None:
        self._validate(project)
        now = now_ns()
        with self.db.transaction() as conn:
            if conn.execute(
                "SELECT 1 FROM projects WHERE identifier = ?", (project.id,)
            ).fetchone():
                raise already_exists(f"project [{project.id}] already exists")
            conn.execute(
                "INSERT INTO projects (identifier, name, description, labels, state, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    project.id,
                    project.name,
                    project.description,
                    project.labels.SerializeToString(deterministic=True),
                    int(project.state),
                    now,
                    now,
                ),
            )

    def update(self, project: project_pb2.Project) -> None:
        if not project.id:
            raise missing("project_id")
        if self._row(project.id) is None:
            raise not_found(f"missing entity of type project with identifier {project.id}")
        self._validate(project)
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE projects SET name = ?, description = ?, labels = ?, state = ?, "
                "updated_at = ? WHERE identifier = ?",
                (
                    project.name,
                    project.description,
                    project.labels.SerializeToString(deterministic=True),
                    int(project.state),
                    now_ns(),
                    project.id,
                ),
            )

    def _to_proto(self, row) -> project_pb2.Project:
        labels = common_pb2.Labels()
        if row["labels"]:
            labels.ParseFromString(row["labels"])
        return project_pb2.Project(
            id=row["identifier"],
            name=row["name"],
            description=row["description"],
            labels=labels,
            state=row["state"],
            domains=self.domain_list(),
        )

    def get(self, identifier: str) -> project_pb2.Project:
        if not identifier:
            raise missing("project_id")
        row = self._row(identifier)
        if row is None:
            raise not_found(f"missing entity of type project with identifier {identifier}")
        return self._to_proto(row)

    def list(self, request: project_pb2.ProjectListRequest) -> project_pb2.Projects:
        limit, offset = q.page(
            request.limit, request.token, zero_is_unlimited=True, rpc="ListProjects"
        )
        query = q.compile_filters(_LISTING, request.filters)
        if not request.filters:
            query.add("p.state <> ?", project_pb2.Project.ARCHIVED)
        sort = request.sort_by if request.HasField("sort_by") else None
        order = q.order_by(_LISTING, sort, default="ORDER BY p.identifier ASC")
        rows = self.db.query(
            f"SELECT p.* FROM projects p {query.sql()} {order} LIMIT ? OFFSET ?",
            [*query.params, limit, offset],
        )
        return project_pb2.Projects(
            projects=[self._to_proto(row) for row in rows],
            token=q.next_token(limit, offset, len(rows)),
        )
