"""Background tasks always run inside the schema of the org that enqueued them."""

from __future__ import annotations

import time

import pytest
from django.db import transaction
from django_q.models import Task
from django_tenants.utils import schema_context

from config.tasks import MissingOrg, enqueue, run_in_schema
from orgs.audit.models import AuditEntry
from orgs.models import Organization
from tests.factories import make_org
from tests.live import LiveProcess

TARGET = "tests.orgs.task_targets.record_marker"


def _markers(schema: str) -> list[str]:
    with schema_context(schema):
        return list(AuditEntry.objects.filter(action="test.marker").values_list("object_repr", flat=True))


@pytest.mark.django_db
class TestGuards:
    def test_enqueue_without_org_fails_loudly(self) -> None:
        with pytest.raises(MissingOrg):
            enqueue(TARGET, schema_name="", marker="x")
        with pytest.raises(MissingOrg):
            enqueue(TARGET, schema_name="public", marker="x")

    def test_model_instances_are_refused(self, org_a: Organization) -> None:
        with pytest.raises(TypeError, match="pass its id"):
            enqueue(TARGET, schema_name=org_a.schema_name, marker=org_a)

    def test_unknown_task_path(self, org_a: Organization) -> None:
        with pytest.raises((ImportError, AttributeError)):
            enqueue("tests.orgs.task_targets.nope", schema_name=org_a.schema_name)

    def test_worker_side_refuses_public_and_unknown_schema(self) -> None:
        with pytest.raises(MissingOrg):
            run_in_schema(TARGET, "public", {"marker": "x"})
        with pytest.raises(MissingOrg):
            run_in_schema(TARGET, "org_does_not_exist", {"marker": "x"})

    def test_runs_in_the_given_schema(self, org_a: Organization, org_b: Organization) -> None:
        assert run_in_schema(TARGET, org_a.schema_name, {"marker": "direct"}) == org_a.schema_name
        assert _markers(org_a.schema_name) == ["direct"]
        assert _markers(org_b.schema_name) == []
        assert _markers("public") == []

    def test_nothing_is_queued_when_the_transaction_rolls_back(self, org_a: Organization) -> None:
        from django_q.models import OrmQ

        before = OrmQ.objects.count()
        with pytest.raises(RuntimeError), transaction.atomic():
            enqueue(TARGET, schema_name=org_a.schema_name, marker="rolled-back")
            raise RuntimeError("abort")
        assert OrmQ.objects.count() == before


@pytest.mark.live
@pytest.mark.usefixtures("drop_org_schemas")
def test_real_worker_runs_each_task_in_its_org(live_worker: LiveProcess) -> None:
    org_a, org_b = make_org("tasks-a"), make_org("tasks-b")
    enqueue(TARGET, schema_name=org_a.schema_name, marker="for-a")
    enqueue(TARGET, schema_name=org_b.schema_name, marker="for-b")
    deadline = time.monotonic() + 90
    while Task.objects.count() < 2:
        assert live_worker.proc.poll() is None, live_worker.output()
        assert time.monotonic() < deadline, "worker did not finish the tasks:\n" + live_worker.output()
        time.sleep(0.3)
    results = {t.result for t in Task.objects.all()}
    assert all(t.success for t in Task.objects.all()), [t.result for t in Task.objects.all()]
    assert results == {org_a.schema_name, org_b.schema_name}
    assert _markers(org_a.schema_name) == ["for-a"]
    assert _markers(org_b.schema_name) == ["for-b"]
    assert _markers("public") == []
