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
from pathlib import Path
from typing import Any

import pytest
from django_tenants.utils import schema_context

from clusters.local import binaries
from clusters.services import clusters as cluster_services
from orgs.choices import Role
from orgs.models import Organization
from orgs.services.members import invite_member
from orgs.services.tokens import revoke_api_token
from tests.clusters.helpers import local_pools, local_provider, owner_actor, run
from tests.factories import add_member, make_org, make_token, owner_of
from tests.live import process_env

pytestmark = [pytest.mark.live, pytest.mark.kube, pytest.mark.usefixtures("drop_org_schemas")]

ST = Path(sys.executable).with_name("st")
SEED = 20261202
ALL_CHECKS = "all"
TOKEN_REVOKE = "v1_orgs_tokens_destroy"
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
}


def _config(path: Path, *, checks: str, examples: int) -> Path:
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
        f"enabled = {'true' if checks == ALL_CHECKS else 'false'}",
    ]
    if checks != ALL_CHECKS:
        lines += [f"{checks}.enabled = true"]
    for operation_id, reason in BUSINESS_RULES.items():
        lines += [
            "",
            f"# 400 allowed for valid-looking bodies: {reason}",
            "[[operations]]",
            f'include-operation-id = "{operation_id}"',
            "checks.positive_data_acceptance.expected-statuses = "
            '["2xx", "400", "401", "403", "404", "409", "429"]',
        ]
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
        capture_output=True,
        text=True,
        timeout=1200,
        env=process_env(),
        check=False,
    )


def realistic_org() -> tuple[Organization, dict[str, Any]]:
    """An org as a team has it after a while; returns it and the ids a test may need."""
    versions = sorted(binaries.available_k8s_versions(), key=lambda v: tuple(map(int, v.split("."))))
    org = make_org("contract")
    owner = owner_of(org)
    actor = owner_actor(org)
    for role in (Role.ADMIN, Role.MEMBER, Role.VIEWER):
        add_member(org, role)
    invite_member(actor, email="new@contract.test", role="member", base_url="http://127.0.0.1/")
    make_token(owner, name="ci", role=Role.MEMBER)
    old, _ = make_token(owner, name="old")
    revoke_api_token(actor, old)
    provider = local_provider(org)
    with schema_context(org.schema_name):
        ready = cluster_services.create_cluster(
            actor, name="web", provider=provider, version=versions[0], pools=local_pools(2)
        )
    run(org, ready.operation)
    with schema_context(org.schema_name):
        cluster_services.create_cluster(actor, name="queued", provider=provider, pools=local_pools(1))
    # Full quotas: a generated create or scale-up is refused (409) instead of starting machines.
    Organization.objects.filter(pk=org.pk).update(max_clusters=2, max_nodes=3)
    return org, {"cluster": ready.cluster.pk}


@pytest.fixture
def contract_org(live_flotilla: str, make_local_cluster: Any) -> tuple[str, Organization]:
    """The live server and the realistic org (make_local_cluster: binaries present, cleanup)."""
    org, _ = realistic_org()
    return live_flotilla, org


def _assert_passed(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    return output


def test_every_operation_keeps_the_schema_with_all_checks(
    contract_org: tuple[str, Organization], tmp_path: Path
) -> None:
    base, org = contract_org
    owner = owner_of(org)
    _, token = make_token(owner, name="contract")
    config = _config(tmp_path / "all.toml", checks=ALL_CHECKS, examples=15)
    output = _assert_passed(schemathesis(base, token, config, "--exclude-operation-id", TOKEN_REVOKE))
    # Revoking tokens last, on a token of its own: the one that revokes itself ends the run's access.
    _, revoker = make_token(owner, name="revoker")
    _assert_passed(schemathesis(base, revoker, config, "--include-operation-id", TOKEN_REVOKE))
    print(output[-3000:])


def test_no_input_makes_a_server_error(contract_org: tuple[str, Organization], tmp_path: Path) -> None:
    """The default check with more examples: whatever is sent, the answer is never a 5xx."""
    base, org = contract_org
    _, token = make_token(owner_of(org), name="fuzz")
    config = _config(tmp_path / "default.toml", checks="not_a_server_error", examples=60)
    output = _assert_passed(schemathesis(base, token, config, "--exclude-operation-id", TOKEN_REVOKE))
    print(output[-3000:])


def test_schema_lists_the_operations_the_tables_name() -> None:
    """The per-operation tables of orgs.api.schema and this module name real operations."""
    from drf_spectacular.generators import SchemaGenerator

    from orgs.api.schema import EXTRA_ERRORS, NO_CONFLICT

    schema = SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-untyped-call]
    ids = {op["operationId"] for item in schema["paths"].values() for op in item.values()}
    assert set(EXTRA_ERRORS) | NO_CONFLICT | set(BUSINESS_RULES) | {TOKEN_REVOKE} <= ids
    json.dumps(schema)
