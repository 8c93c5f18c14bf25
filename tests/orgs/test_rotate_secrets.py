"""Key rotation: `rotate_secrets` re-encrypts every stored secret of every org under the newest key,
after which the old key can be dropped and everything still reads."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context

from clusters.models import Cluster, ProviderAccount
from orgs.models import Organization

pytestmark = pytest.mark.django_db
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def _raw(org: Organization, table: str, column: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT {column} FROM "{org.schema_name}".{table} ORDER BY id')
        return [row[0] for row in cursor.fetchall()]


def test_rotation_re_encrypts_every_org_under_the_new_key(org_a: Organization, org_b: Organization) -> None:
    with override_settings(FLOTILLA_ENCRYPTION_KEYS=[OLD]):
        for org in (org_a, org_b):
            with schema_context(org.schema_name):
                account = ProviderAccount.objects.create(
                    name="aws", kind="ec2", credentials=json.dumps({"secret_access_key": f"s-{org.slug}"})
                )
                Cluster.objects.create(
                    name="c",
                    provider=account,
                    version="1.36.1",
                    external_name=f"c-{org.slug}",
                    kubeconfig=f"kubeconfig of {org.slug}",
                )
        before = _raw(org_a, "clusters_cluster", "kubeconfig")
    with override_settings(FLOTILLA_ENCRYPTION_KEYS=[NEW, OLD]):
        call_command("rotate_secrets", verbosity=0)
        call_command("rotate_secrets", verbosity=0)  # twice is fine
    assert _raw(org_a, "clusters_cluster", "kubeconfig") != before
    with override_settings(FLOTILLA_ENCRYPTION_KEYS=[NEW]):
        for org in (org_a, org_b):
            with schema_context(org.schema_name):
                assert Cluster.objects.get().kubeconfig_text() == f"kubeconfig of {org.slug}"
                assert ProviderAccount.objects.get().secret_values() == {"secret_access_key": f"s-{org.slug}"}
