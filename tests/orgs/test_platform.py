"""Platform plumbing: /metrics, secrets at rest, tenant-scoped cache keys, deploy checks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from django_tenants.utils import schema_context

from orgs import crypto
from orgs.models import Organization
from tests.factories import make_user
from tests.live import ROOT


@pytest.mark.django_db
class TestMetrics:
    def test_refused_without_credentials(self) -> None:
        assert Client().get("/metrics").status_code == 401
        assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
        member = Client()
        member.force_login(make_user())
        assert member.get("/metrics").status_code == 401

    def test_exposes_request_task_and_queue_metrics(self) -> None:
        from datetime import timedelta

        from django.utils import timezone
        from django_q.models import Task

        now = timezone.now()
        for n, ok in enumerate([True, True, False]):
            Task.objects.create(
                id=f"{n:032x}",
                name=f"t{n}",
                func="config.tasks.run_in_schema",
                started=now,
                stopped=now + timedelta(seconds=2),
                success=ok,
                group="org_x",
            )
        Client().get("/login/")
        response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer test-metrics-token")
        assert response.status_code == 200
        body = response.content.decode()
        assert (
            'flotilla_http_request_duration_seconds_bucket{le="0.005",method="GET",route="login/",status="2xx"}'
            in body
        )
        assert "# TYPE flotilla_task_queue_depth gauge" in body
        assert 'flotilla_tasks_total{func="config.tasks.run_in_schema",outcome="success"} 2.0' in body
        assert 'flotilla_tasks_total{func="config.tasks.run_in_schema",outcome="failure"} 1.0' in body
        assert (
            'flotilla_task_duration_seconds_total{func="config.tasks.run_in_schema",outcome="success"} 4.0'
            in body
        )

    def test_staff_session_allowed(self) -> None:
        staff = Client()
        staff.force_login(make_user(is_staff=True))
        assert staff.get("/metrics").status_code == 200


class TestSecrets:
    def test_round_trip_and_rotation(self) -> None:
        old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
        with override_settings(FLOTILLA_ENCRYPTION_KEYS=[old]):
            token = crypto.encrypt("kubeconfig-secret")
        assert "kubeconfig-secret" not in token
        with override_settings(FLOTILLA_ENCRYPTION_KEYS=[new, old]):
            assert crypto.decrypt(token) == "kubeconfig-secret"
            rotated = crypto.rotate(token)
        with override_settings(FLOTILLA_ENCRYPTION_KEYS=[new]):
            assert crypto.decrypt(rotated) == "kubeconfig-secret"
            with pytest.raises(ValueError, match="no configured encryption key"):
                crypto.decrypt(token)

    def test_no_keys_is_a_configuration_error(self) -> None:
        with override_settings(FLOTILLA_ENCRYPTION_KEYS=[]), pytest.raises(ImproperlyConfigured):
            crypto.encrypt("x")

    def test_secret_never_prints_itself(self) -> None:
        secret = crypto.Secret("hunter2")
        assert "hunter2" not in repr(secret) and "hunter2" not in str(secret) and "hunter2" not in f"{secret}"
        assert secret.reveal() == "hunter2"

    def test_field_stores_ciphertext(self) -> None:
        field = crypto.EncryptedTextField()
        stored = field.get_prep_value("clear-text")
        assert stored.startswith("fernet:") and "clear-text" not in stored
        loaded = field.from_db_value(stored, None, None)
        assert loaded is not None and loaded.reveal() == "clear-text"
        assert field.value_to_string(object()) == "********"


@pytest.mark.django_db
def test_cache_keys_are_scoped_to_the_org(org_a: Organization, org_b: Organization) -> None:
    with schema_context(org_a.schema_name):
        cache.set("dashboard", "alpha's data")
    with schema_context(org_b.schema_name):
        assert cache.get("dashboard") is None
        cache.set("dashboard", "bravo's data")
    with schema_context(org_a.schema_name):
        assert cache.get("dashboard") == "alpha's data"


def test_deploy_check_is_clean_with_production_settings() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.prod",
        FLOTILLA_SECRET_KEY="p" * 20 + "-a-long-random-production-secret-value-0123456789",
        FLOTILLA_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        FLOTILLA_ALLOWED_HOSTS="flotilla.example.com",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_missing_secrets() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOTILLA_")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.prod")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "FLOTILLA_SECRET_KEY" in result.stderr
