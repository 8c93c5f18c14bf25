"""The settings `scripts/run.sh` runs with (config.settings.host): no DEBUG, no secret from the repo."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context

from clusters.models import ProviderAccount
from config import install_secrets
from orgs import crypto
from orgs.models import Organization
from tests.live import ROOT

PRINT_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'debug': s.DEBUG, 'secret_key': s.SECRET_KEY, "
    "'keys': s.FLOTILLA_ENCRYPTION_KEYS, 'metrics': s.METRICS_TOKEN}))"
)


def _host_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOTILLA_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.host",
        FLOTILLA_DATA_DIR=str(data_dir),
        FLOTILLA_DATABASE_URL=os.environ.get("FLOTILLA_DATABASE_URL", ""),
        **extra,
    )
    return env


def _settings_of(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    got: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return got


def test_first_run_generates_secrets_kept_private_and_reused(tmp_path: Path) -> None:
    first = _settings_of(_host_env(tmp_path))
    path = tmp_path / install_secrets.FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _settings_of(_host_env(tmp_path)) == first
    # Another install gets other secrets, and none of them is written anywhere in the repository.
    other = _settings_of(_host_env(tmp_path / "other"))
    assert other["secret_key"] != first["secret_key"] and other["keys"] != first["keys"]
    sources = "\n".join(p.read_text() for p in (ROOT / "config").rglob("*.py"))
    for value in (first["secret_key"], *first["keys"], first["metrics"]):  # type: ignore[misc]
        assert str(value) not in sources
    Fernet(str(first["keys"][0]).encode())  # type: ignore[index]


def test_never_runs_with_debug_even_when_asked(tmp_path: Path) -> None:
    assert _settings_of(_host_env(tmp_path, FLOTILLA_DEBUG="true"))["debug"] is False


def test_environment_wins_over_the_generated_file(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    got = _settings_of(_host_env(tmp_path, FLOTILLA_ENCRYPTION_KEYS=key, FLOTILLA_METRICS_TOKEN="from-vault"))
    assert got["keys"] == [key] and got["metrics"] == "from-vault"


def test_a_secrets_file_others_can_read_is_refused(tmp_path: Path) -> None:
    _settings_of(_host_env(tmp_path))
    (tmp_path / install_secrets.FILE_NAME).chmod(0o644)
    out = subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=ROOT,
        env=_host_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0 and "readable by other users" in out.stderr


def test_two_processes_starting_together_agree_on_one_file(tmp_path: Path) -> None:
    env = _host_env(tmp_path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PRINT_SETTINGS], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = {p.communicate(timeout=120)[0].strip().splitlines()[-1] for p in procs}
    assert len(outputs) == 1


def test_deploy_check_is_clean_behind_https(tmp_path: Path) -> None:
    env = _host_env(tmp_path, FLOTILLA_PUBLIC_URL="https://flotilla.example.com")
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


def test_rotation_keeps_old_sessions_and_drops_the_old_encryption_key(tmp_path: Path) -> None:
    before = install_secrets.load_or_create(tmp_path)
    after = install_secrets.rotate(tmp_path, secret_key=True, metrics_token=True)
    assert after["secret_key"] != before["secret_key"]
    assert after["secret_key_fallbacks"] == [before["secret_key"]]
    assert after["metrics_token"] != before["metrics_token"]
    assert after["encryption_keys"] == before["encryption_keys"]


@pytest.mark.django_db
def test_rotate_command_reencrypts_every_secret_under_a_new_key(tmp_path: Path, org_a: Organization) -> None:
    old_keys = install_secrets.load_or_create(tmp_path)["encryption_keys"]
    with override_settings(DATA_DIR=tmp_path, FLOTILLA_ENCRYPTION_KEYS=old_keys):
        with schema_context(org_a.schema_name):
            account = ProviderAccount.objects.create(
                name="cloud", kind="ec2", credentials='{"key": "s3cret"}'
            )
        call_command("rotate_install_secrets", "--encryption-key", stdout=open(os.devnull, "w"))  # noqa: SIM115
    new_keys = install_secrets.read(tmp_path / install_secrets.FILE_NAME)["encryption_keys"]
    assert len(new_keys) == 1 and new_keys[0] not in old_keys
    with override_settings(FLOTILLA_ENCRYPTION_KEYS=new_keys), schema_context(org_a.schema_name):
        stored = ProviderAccount.objects.get(pk=account.pk)
        assert stored.credentials.reveal() == '{"key": "s3cret"}'
    with schema_context(org_a.schema_name), connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM clusters_provideraccount WHERE id = %s", [account.pk])
        raw = cursor.fetchone()[0]
    with override_settings(FLOTILLA_ENCRYPTION_KEYS=old_keys), pytest.raises(ValueError):
        crypto.decrypt(raw)
