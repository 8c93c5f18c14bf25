"""The staff admin of clusters: every org's clusters and operations, actions through the services,
and no secret (kubeconfig, credentials) on any page."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from clusters.choices import OperationKind, OperationStatus
from clusters.models import Cluster, Operation, ProviderAccount
from orgs.audit.models import AuditEntry
from orgs.models import Organization
from tests.clusters.test_views import in_org, make_cluster, messages_of
from tests.factories import make_user, owner_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(make_user("staff@flotilla.test", is_staff=True, is_superuser=True))
    return client


def _operation(org: Organization, cluster: Cluster) -> Operation:
    operation: Operation = in_org(
        org, lambda: Operation.objects.filter(cluster=cluster).order_by("-id").first()
    )
    return operation


def test_members_of_orgs_cannot_open_it(org_a: Organization) -> None:
    client = Client()
    client.force_login(owner_of(org_a).user)
    assert client.get("/admin/clusters/cluster/").status_code == 302


def test_without_an_org_the_lists_across_orgs_open(staff: Client) -> None:
    # The lists across orgs are the staff directory's (tests/clusters/test_directory.py).
    assert staff.get("/admin/clusters/cluster/")["Location"] == "/admin/directory/clusterentry/"
    assert staff.get("/admin/clusters/operation/")["Location"] == "/admin/directory/operationentry/"
    response = staff.get("/admin/clusters/provideraccount/", follow=True)
    assert "listed one organisation at a time" in messages_of(response)


def test_one_orgs_list(staff: Client, org_a: Organization, org_b: Organization) -> None:
    make_cluster(org_a, "alpha-web")
    make_cluster(org_b, "bravo-db")
    page = staff.get(f"/admin/clusters/cluster/?schema={org_a.schema_name}").content.decode()
    assert "alpha-web" in page and "bravo-db" not in page
    page = staff.get(f"/admin/clusters/operation/?schema={org_b.schema_name}&status=queued").content.decode()
    assert "bravo-db" in page and "alpha-web" not in page


def test_pages_never_show_secrets(staff: Client, org_a: Organization) -> None:
    cluster = make_cluster(org_a)

    def arrange() -> ProviderAccount:
        stored = Cluster.objects.get(pk=cluster.pk)
        stored.kubeconfig = "KUBECONFIG-IN-CLEAR"
        stored.bootstrap_secret = "BOOTSTRAP-IN-CLEAR"
        stored.save()
        return ProviderAccount.objects.create(
            name="aws", kind="ec2", credentials=json.dumps({"secret_access_key": "AWS-KEY-IN-CLEAR"})
        )

    account = in_org(org_a, arrange)
    filters = quote(f"schema={org_a.schema_name}")
    pages = [
        staff.get(f"/admin/clusters/cluster/{cluster.pk}/change/?_changelist_filters={filters}"),
        staff.get(f"/admin/clusters/cluster/?schema={org_a.schema_name}"),
        staff.get(f"/admin/clusters/provideraccount/{account.pk}/change/?schema={org_a.schema_name}"),
        staff.get(f"/admin/clusters/provideraccount/?schema={org_a.schema_name}"),
        staff.get("/admin/clusters/provideraccount/", follow=True),
    ]
    for response in pages:
        assert response.status_code == 200
        body = response.content.decode()
        assert "IN-CLEAR" not in body
    assert "web" in pages[0].content.decode() and "aws" in pages[2].content.decode()


def test_change_page_needs_an_org(staff: Client, org_a: Organization) -> None:
    cluster = make_cluster(org_a)
    response = staff.get(f"/admin/clusters/cluster/{cluster.pk}/change/", follow=True)
    assert "Choose an organisation first." in messages_of(response)


def test_cancel_and_retry_actions_go_through_the_services(staff: Client, org_a: Organization) -> None:
    cluster = make_cluster(org_a)
    operation = _operation(org_a, cluster)
    url = f"/admin/clusters/operation/?schema={org_a.schema_name}"
    response = staff.post(url, {"action": "cancel", "_selected_action": [operation.pk]}, follow=True)
    assert "Cancelled 1 operation(s)." in messages_of(response)
    assert _operation(org_a, cluster).status == OperationStatus.CANCELLED
    # A cancelled operation cannot be cancelled again: the service's reason is shown.
    response = staff.post(url, {"action": "cancel", "_selected_action": [operation.pk]}, follow=True)
    assert "has already cancelled" in messages_of(response)
    staff.post(url, {"action": "retry", "_selected_action": [operation.pk]})
    assert _operation(org_a, cluster).status == OperationStatus.QUEUED
    with schema_context(org_a.schema_name):
        entries = list(
            AuditEntry.objects.filter(action__in=["operation.cancelled", "operation.retried"]).values_list(
                "actor_label", "source"
            )
        )
    assert entries and set(entries) == {("staff@flotilla.test", "admin")}
    # The engine's record of every move is on the operation's page.
    page = staff.get(f"/admin/clusters/operation/{operation.pk}/change/?schema={org_a.schema_name}")
    assert page.status_code == 200
    rows = [(r.from_status, r.to_status) for r in page.context["inline_admin_formsets"][0].formset.queryset]
    assert rows == [("queued", "cancelled"), ("cancelled", "queued")]


def test_delete_action(staff: Client, org_a: Organization) -> None:
    cluster = make_cluster(org_a)
    staff.post(
        f"/admin/clusters/cluster/?schema={org_a.schema_name}",
        {"action": "delete_through_services", "_selected_action": [cluster.pk]},
    )
    assert _operation(org_a, cluster).kind == OperationKind.DELETE
    assert in_org(org_a, lambda: Cluster.objects.filter(pk=cluster.pk).exists())  # the loop deletes it
