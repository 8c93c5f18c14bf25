"""The `flotilla` of `pip install ./cli` alone (no Django next to it) against a real server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from django.apps import apps

if not apps.ready:  # collected by the Django-free unit run (`-p no:django --noconftest`)
    pytest.skip("the live CLI tests need pytest-django and the database", allow_module_level=True)

from django_tenants.utils import schema_context

from clusters.choices import ClusterStatus
from clusters.models import Cluster, ProviderAccount
from tests.cli.standalone import clean_env, standalone_cli
from tests.factories import make_org, make_token, owner_of

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("drop_org_schemas")]


@pytest.mark.timeout(600)
def test_standalone_cli_lists_clusters(
    live_flotilla: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    bin_dir = standalone_cli(tmp_path_factory.mktemp("standalone-cli"))
    org, other = make_org("cli-alone"), make_org("cli-alone-other")
    for owner, name in ((org, "mine"), (other, "theirs")):
        with schema_context(owner.schema_name):
            account = ProviderAccount.objects.create(name="imported", kind="existing")
            Cluster.objects.create(
                name=name, provider=account, version="1.31.4", external_name=name, status=ClusterStatus.READY
            )
    _, token = make_token(owner_of(org))
    env = clean_env(FLOTILLA_SERVER=live_flotilla, FLOTILLA_TOKEN=token, FLOTILLA_CONFIG_DIR=str(tmp_path))

    def flotilla(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [bin_dir / "flotilla", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )

    table = flotilla("clusters", "list")
    assert table.returncode == 0, table.stderr
    assert "mine" in table.stdout and "theirs" not in table.stdout
    listed = json.loads(flotilla("-o", "json", "clusters", "list").stdout)
    assert [c["name"] for c in listed] == ["mine"]
