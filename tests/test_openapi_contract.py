"""The OpenAPI schema is a contract: schemathesis holds the live server (daphne, real PostgreSQL,
a real local cluster) to it, with every check it has.

The org is realistic: an owner whose token runs the tests, an admin, a member and a viewer, a
pending invitation, other tokens (one revoked), the local provider, a Ready local cluster (a
real kwok control plane, with nodes, events and a kubeconfig) and a cluster whose creation is
still queued. No worker runs: what the tests queue stays queued, so the org does not change
under the run in ways that depend on timing (the worker's side has its own live tests).

Quotas are full (clusters and nodes), so the generated creates answer 409 instead of starting
control planes; deletes, revocations and removals only queue an operation or touch rows made
for the run. Revoking a token is the one operation that can pull the ground from under the
run (the run's own token is in the list it reads ids from): it runs last, on its own token.

Runs are bounded (max examples per operation) and deterministic (a fixed seed, deterministic
generation), with one worker, so a failure reproduces.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from django_tenants.utils import schema_context

from clusters.local import binaries
from clusters.models import NodePool
from clusters.services import apps as app_services
from clusters.services import clusters as cluster_services
from orgs.choices import Role
from orgs.models import Organization
from orgs.services.members import invite_member
from orgs.services.tokens import revoke_api_token
from snapshots.models import StorageLocation
from snapshots.services import restores as restore_services
from snapshots.services import snapshots as snapshot_services
from tests.clusters.helpers import local_pools, local_provider, owner_actor, run
from tests.factories import add_member, make_org, make_token, owner_of
from tests.live import process_env

pytestmark = [
    pytest.mark.live,
    pytest.mark.kube,
    # Fresh sequences: the org's ids, and so the requests made with them, are the same each run.
    pytest.mark.django_db(transaction=True, reset_sequences=True),
    pytest.mark.usefixtures("drop_org_schemas"),
]

ST = Path(sys.executable).with_name("st")
SEED = 20261202
ALL_CHECKS = "all"
TOKEN_REVOKE = "v1_orgs_tokens_destroy"
TOKEN_OPERATIONS = ("v1_orgs_tokens_create", "v1_orgs_tokens_list", "v1_orgs_tokens_retrieve", TOKEN_REVOKE)
# Rules the schema cannot state, each checked by a service against data only the server has:
# these operations may answer 400 to a body the schema allows.
BUSINESS_RULES = {
    # size, region and version must be in the provider's catalogue; labels and taints follow
    # Kubernetes' rules
    "v1_clusters_create": "the provider's catalogue",
    "v1_clusters_pools_create": "the provider's catalogue",
    "v1_clusters_upgrade_create": "the catalogue and the one-minor-version upgrade rule",
    # the kubeconfig must parse and name a reachable API with embedded credentials
    "v1_clusters_import_create": "the kubeconfig's content",
    # each kind needs its own fields, and the provider checks the credentials
    "v1_clusters_providers_create": "the kind's fields",
    "v1_clusters_providers_partial_update": "the kind's fields",
    # a cluster's last pool cannot be removed
    "v1_clusters_pools_destroy": "the last pool",
    # an expiry must be in the future
    "v1_orgs_tokens_create": "expires_at in the future",
    # an app's spec follows Kubernetes' rules (names, image references, quantities, ports, env
    # names, health checks), a change must change something, a revision must exist
    "v1_clusters_apps_create": "Kubernetes' rules for an app's spec",
    "v1_clusters_apps_partial_update": "Kubernetes' rules for an app's spec",
    "v1_clusters_apps_scale_create": "a different number of replicas",
    "v1_clusters_apps_rollback_create": "an existing earlier revision",
    # only a Deployment of the cluster that Flotilla can manage is adopted
    "v1_clusters_workloads_adopt_create": "an adoptable Deployment of the cluster",
    # a selection's namespaces, kinds and label selector follow Kubernetes' grammar
    "v1_snapshots_create": "Kubernetes' grammar for a selection",
    "v1_snapshots_restores_create": "Kubernetes' grammar for a selection and its maps",
    # a storage location is checked against the storage itself before it is saved
    "v1_snapshots_locations_create": "the storage's answer to a test write",
    "v1_snapshots_locations_partial_update": "the storage's answer to a test write",
    # only a completed preview is confirmed
    "v1_snapshots_restores_confirm_create": "a completed preview",
}

# DELETE keeps the record on purpose: a revoked token stays readable (revoked_at set, shown by
# the list for the audit trail), a deleted cluster too (status deleting, then deleted). Reading
# them after a DELETE is no use after free.
KEPT_AFTER_DELETE = {
    "v1_orgs_tokens_retrieve": "a revoked token",
    "v1_clusters_retrieve": "a deleted cluster",
    "v1_clusters_events_list": "a deleted cluster",
    "v1_clusters_nodes_list": "a deleted cluster",
    "v1_clusters_pools_list": "a deleted cluster",
    "v1_clusters_kubeconfig_retrieve": "a deleted cluster",
    "v1_clusters_apps_retrieve": "a deleted app",
    "v1_clusters_apps_revisions_list": "a deleted app",
    "v1_snapshots_retrieve": "a deleted snapshot",
}

# Path ids: half of the generated requests use the id of a real object of the org (the other
# half whatever schemathesis makes up), so operations on one object reach its real rows.
ID_DICTIONARIES = (  # operationId prefix → the objects its `id` names (first match)
    ("v1_orgs_members_", "members"),
    ("v1_orgs_tokens_", "tokens"),
    ("v1_orgs_invitations_", "invitations"),
    ("v1_clusters_operations_", "operations"),
    ("v1_clusters_apps_", "apps"),
    ("v1_clusters_providers_", "providers"),
    ("v1_clusters_", "clusters"),
    ("v1_snapshots_locations_", "locations"),
    ("v1_snapshots_restores_", "restores"),
    ("v1_snapshots_", "snapshots"),
)
REAL_ID_PROBABILITY = 0.5


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"


def _operation_settings(operation_id: str, path: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if operation_id in BUSINESS_RULES:
        statuses = ["2xx", "400", "401", "403", "404", "409", "429"]
        settings["checks.positive_data_acceptance.expected-statuses"] = statuses
    if operation_id in KEPT_AFTER_DELETE:
        settings["checks.use_after_free.enabled"] = False
    parameters = {}
    if "{id}" in path:
        dictionary = next(name for prefix, name in ID_DICTIONARIES if operation_id.startswith(prefix))
        parameters["path.id"] = {"dictionary": dictionary, "probability": REAL_ID_PROBABILITY}
    if "{pool_id}" in path:
        parameters["path.pool_id"] = {"dictionary": "pools", "probability": REAL_ID_PROBABILITY}
    if parameters:
        settings["parameters"] = parameters
    return settings


def _config(
    path: Path, schema: dict[str, Any], ids: dict[str, list[int]], *, checks: str, examples: int
) -> Path:
    """A schemathesis.toml: generation bounded and deterministic, the checks, the org's ids."""
    lines = [
        "workers = 1",
        "[generation]",
        "deterministic = true",
        # Every text field refuses NUL (PostgreSQL cannot store it); the schema does not
        # repeat that on each field.
        "allow-x00 = false",
        f"max-examples = {examples}",
        "database = 'none'",
        "[checks]",
        f"enabled = {_toml(checks == ALL_CHECKS)}",
    ]
    if checks != ALL_CHECKS:
        lines.append(f"{checks}.enabled = true")
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {_toml(values)}"]
    for item_path, item in schema["paths"].items():
        for operation in item.values():
            settings = _operation_settings(operation["operationId"], item_path)
            if not settings:
                continue
            reason = BUSINESS_RULES.get(operation["operationId"])
            kept = KEPT_AFTER_DELETE.get(operation["operationId"])
            lines.append("")
            lines += [f"# 400 allowed for valid-looking bodies: {reason}"] if reason else []
            lines += [f"# readable after DELETE: {kept}"] if kept else []
            lines += ["[[operations]]", f"include-operation-id = {_toml(operation['operationId'])}"]
            lines += [f"{key} = {_toml(value)}" for key, value in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def schemathesis(base: str, token: str, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `st run` against the live server's own schema; returns the finished process."""
    return subprocess.run(
        [
            str(ST),
            "--config-file",
            str(config),
            "run",
            f"{base}/api/schema/?format=json",
            "--url",
            base,
            "-H",
            f"Authorization: Bearer {token}",
            "--seed",
            str(SEED),
            "--no-color",
            *args,
        ],
        # Its cache (crashes found before, replayed first) lives beside the config, per run.
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=1200,
        env=process_env(),
        check=False,
    )


def realistic_org() -> tuple[Organization, dict[str, list[int]]]:
    """An org as a team has it after a while, and the ids of its objects by kind."""
    versions = sorted(binaries.available_k8s_versions(), key=lambda v: tuple(map(int, v.split("."))))
    org = make_org("contract")
    owner = owner_of(org)
    actor = owner_actor(org)
    members = [owner.pk] + [add_member(org, role).pk for role in (Role.ADMIN, Role.MEMBER, Role.VIEWER)]
    invitation, _ = invite_member(
        actor, email="new@contract.test", role="member", base_url="http://127.0.0.1/"
    )
    ci, _ = make_token(owner, name="ci", role=Role.MEMBER)
    old, _ = make_token(owner, name="old")
    revoke_api_token(actor, old)
    provider = local_provider(org)
    with schema_context(org.schema_name):
        ready = cluster_services.create_cluster(
            actor, name="web", provider=provider, version=versions[0], pools=local_pools(2, 1)
        )
    run(org, ready.operation)
    with schema_context(org.schema_name):
        site = app_services.deploy_app(
            actor,
            cluster=ready.cluster,
            name="site",
            spec={"image": "nginx:1.27", "ports": [80], "readiness": "http:/:80"},
            secrets={"TOKEN": "contract-secret"},
        )
    run(org, site.operation)
    with schema_context(org.schema_name):
        # Its rollout stays queued (no worker runs).
        api = app_services.deploy_app(actor, cluster=ready.cluster, name="api", spec={"image": "redis:7"})
        queued = cluster_services.create_cluster(
            actor, name="queued", provider=provider, pools=local_pools(1)
        )
        pools = list(NodePool.objects.filter(cluster=ready.cluster).values_list("pk", flat=True))
        taken = snapshot_services.create_snapshot(
            actor, ready.cluster, name="nightly", selection={"include_namespaces": ["default"]}
        )
    run(org, taken.operation)
    with schema_context(org.schema_name):
        preview = restore_services.start_restore(
            actor,
            taken.snapshot,
            ready.cluster,
            mode="preview",
            options={"namespace_map": {"default": "copy"}},
        )
    run(org, preview.operation)
    with schema_context(org.schema_name):
        location = StorageLocation.objects.get(is_default=True)
    # Full quotas: a generated create or scale-up is refused (409) instead of starting machines.
    Organization.objects.filter(pk=org.pk).update(max_clusters=2, max_nodes=4)
    return org, {
        "members": members,
        "tokens": [ci.pk, old.pk],
        "invitations": [invitation.pk],
        "providers": [provider.pk],
        "clusters": [ready.cluster.pk, queued.cluster.pk],
        "pools": pools,
        "operations": [ready.operation.pk, queued.operation.pk, site.operation.pk, api.operation.pk],
        "apps": [site.app.pk, api.app.pk],
        "snapshots": [taken.snapshot.pk],
        "restores": [preview.restore.pk],
        "locations": [location.pk],
    }


@dataclass
class Contract:
    """The live server, the org, its ids and the schema it serves."""

    base: str
    org: Organization
    ids: dict[str, list[int]]
    schema: dict[str, Any]

    def token(self, name: str) -> str:
        return make_token(owner_of(self.org), name=name)[1]

    def run(self, tmp_path: Path, token: str, *args: str, checks: str, examples: int) -> str:
        """`st run` with these checks; fails the test with schemathesis' report unless all pass."""
        config = _config(tmp_path / f"{checks}.toml", self.schema, self.ids, checks=checks, examples=examples)
        result = schemathesis(self.base, token, config, *args)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-20000:]
        return output


@pytest.fixture
def contract(live_flotilla: str, make_local_cluster: Any) -> Contract:
    """The live server and the realistic org (make_local_cluster: the binaries are there, and
    the control planes are deleted at the end)."""
    org, ids = realistic_org()
    schema = httpx.get(f"{live_flotilla}/api/schema/?format=json", timeout=30).json()
    return Contract(live_flotilla, org, ids, schema)


def test_every_operation_keeps_the_schema_with_all_checks(contract: Contract, tmp_path: Path) -> None:
    token = contract.token("contract")
    output = contract.run(
        tmp_path, token, "--exclude-operation-id", TOKEN_REVOKE, checks=ALL_CHECKS, examples=15
    )
    print(output[-2500:])
    # Revoking tokens last, on a token of its own, with the operations that make and list tokens
    # (so the stateful phase revokes what it created): revoking its own token ends its access.
    tokens = [f"--include-operation-id={op}" for op in TOKEN_OPERATIONS]
    output = contract.run(tmp_path, contract.token("revoker"), *tokens, checks=ALL_CHECKS, examples=15)
    print(output[-2500:])


def test_no_input_makes_a_server_error(contract: Contract, tmp_path: Path) -> None:
    """The default check with more examples: whatever is sent, the answer is never a 5xx."""
    token = contract.token("fuzz")
    output = contract.run(
        tmp_path, token, "--exclude-operation-id", TOKEN_REVOKE, checks="not_a_server_error", examples=40
    )
    print(output[-2500:])


def test_the_tables_name_real_operations() -> None:
    """The per-operation tables of orgs.api.schema and of this module name real operations."""
    from drf_spectacular.generators import SchemaGenerator

    from orgs.api.schema import EXTRA_ERRORS, NO_CONFLICT

    schema = SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-untyped-call]
    ids = {op["operationId"] for item in schema["paths"].values() for op in item.values()}
    tables = set(EXTRA_ERRORS) | NO_CONFLICT | set(BUSINESS_RULES) | set(KEPT_AFTER_DELETE)
    assert tables | set(TOKEN_OPERATIONS) <= ids
    for path, item in schema["paths"].items():
        for operation in item.values():
            _operation_settings(operation["operationId"], path)  # every {id} has its dictionary
