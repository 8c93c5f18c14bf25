"""Suite-wide fixtures: the test database with the org template schema, orgs, clients."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from orgs.choices import Role
from orgs.models import Membership, Organization
from orgs.tenancy import use_public_schema
from tests.factories import add_member, make_org, make_token, owner_of

pytest_plugins = ["tests.live", "tests.local_kube"]


@pytest.fixture(scope="session", autouse=True)
def _fresh_snapshot_dir() -> None:
    """The run's local storage locations start empty (an earlier run's orgs had the same schemas)."""
    from django.conf import settings

    shutil.rmtree(settings.FLOTILLA_SNAPSHOT_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: Any, django_db_blocker: Any) -> None:
    """The test database as `prepare_database` leaves it: migrated public and template schemas."""
    from orgs.services.schemas import ensure_template_schema

    with django_db_blocker.unblock():
        ensure_template_schema()


@pytest.fixture(autouse=True)
def _public_schema_each_test() -> Iterator[None]:
    """Every test starts, and leaves, the connection in the public schema.

    It also ends each test on a fresh database connection: a PostgreSQL backend that has created
    (and rolled back) org schemas keeps their catalogue caches, so one connection kept for the
    whole session gets slower with every org a test makes. Being autouse, this is torn down after
    pytest-django has rolled the test back.
    """
    use_public_schema()
    yield
    use_public_schema()
    connection.close()


@pytest.fixture
def org_a(db: None) -> Organization:
    """An organisation with an owner."""
    return make_org("alpha")


@pytest.fixture
def org_b(db: None) -> Organization:
    """Another organisation, for isolation checks."""
    return make_org("bravo")


@pytest.fixture
def member_factory(db: None) -> Any:
    """add_member, as a fixture."""
    return add_member


def api_client_for(membership: Membership, role: Role | str | None = None) -> APIClient:
    """An API client holding a fresh token of the member (role defaults to theirs)."""
    _, clear = make_token(membership, role=role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {clear}")
    return client


@pytest.fixture
def client_a(org_a: Organization) -> APIClient:
    """An owner token client of org A."""
    return api_client_for(owner_of(org_a))


@pytest.fixture
def client_b(org_b: Organization) -> APIClient:
    """An owner token client of org B."""
    return api_client_for(owner_of(org_b))
