"""The EC2 driver through libcloud's real EC2 driver against moto (server mode, loopback)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from clusters.exceptions import CredentialsRejected, ProviderError
from clusters.providers.cloud import Ec2Driver, cluster_tag
from clusters.providers.k3s import CertKey
from clusters.providers.k3s_upgrade import check_upgrade_path
from clusters.providers.records import VmRecord
from tests.clusters.cloud.conftest import Ec2Account
from tests.clusters.cloud.fake_context import FakeContext, WorkerKilled, drive, make_cluster, make_pool

GPU_TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


def new_context(name: str = "web", *, general: int = 2, gpu: int = 1) -> FakeContext:
    return FakeContext(
        make_cluster(name),
        [
            make_pool("general", "t3.small", general, labels={"tier": "web"}),
            make_pool("gpu", "t3.medium", gpu, taints=[GPU_TAINT]),
        ],
    )


def instances(ec2: Ec2Account, ctx: FakeContext) -> dict[str, dict[str, Any]]:
    """The cluster's instances at moto that are not terminated, by Name tag."""
    pages = ec2.emulator.ec2().describe_instances(
        Filters=[
            {"Name": "tag:flotilla-cluster", "Values": [cluster_tag(ctx.cluster.external_name)]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
    )
    found: dict[str, dict[str, Any]] = {}
    for reservation in pages["Reservations"]:
        for instance in reservation["Instances"]:
            name = next(t["Value"] for t in instance["Tags"] if t["Key"] == "Name")
            assert name not in found, f"duplicate instance {name}"
            found[name] = instance
    return found


def user_data(ec2: Ec2Account, instance_id: str) -> dict[str, Any]:
    raw = ec2.emulator.ec2().describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    text = base64.b64decode(raw["UserData"]["Value"]).decode()
    assert text.startswith("#cloud-config\n")
    return dict(yaml.safe_load(text))


def k3s_config(document: dict[str, Any]) -> dict[str, Any]:
    entry = next(f for f in document["write_files"] if f["path"] == "/etc/rancher/k3s/config.yaml")
    assert entry["permissions"] == "0600"
    return dict(yaml.safe_load(entry["content"]))


def security_groups(ec2: Ec2Account, name: str) -> list[dict[str, Any]]:
    found = ec2.emulator.ec2().describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])
    return list(found["SecurityGroups"])


def test_validate_accepts_the_account_and_rejects_wrong_credentials(ec2: Ec2Account) -> None:
    ec2.driver().validate()

    with pytest.raises(CredentialsRejected, match="AuthFailure") as wrong_secret:
        Ec2Driver(ec2.credentials(secret="not-the-secret"), ec2.settings()).validate()
    assert wrong_secret.value.retryable is False
    assert "credentials" in wrong_secret.value.fields

    with pytest.raises(CredentialsRejected, match="AWS EC2 rejected the credentials"):
        Ec2Driver(ec2.credentials(key="AKIAUNKNOWNKEY000000"), ec2.settings()).validate()


def test_regions_come_from_libcloud_and_sizes_from_the_region(ec2: Ec2Account) -> None:
    driver = ec2.driver()
    regions = {r.id: r.name for r in driver.regions()}
    assert "us-east-1" in regions and "eu-west-1" in regions
    assert not [r for r in regions if r.startswith(("cn-", "us-gov-"))]

    sizes = {s.id: s for s in driver.sizes("us-east-1")}
    assert sizes["t3.small"].cpus == 2
    assert sizes["t3.small"].memory_mb == 2048
    assert driver.versions() == ["1.36.1", "1.35.4"]


def test_reconcile_creates_the_vms_a_members_only_security_group_and_a_kubeconfig(ec2: Ec2Account) -> None:
    driver = ec2.driver()
    ctx = new_context()

    outcomes = drive(driver, ctx)

    assert outcomes[-1].done
    ext = ctx.cluster.external_name
    found = instances(ec2, ctx)
    assert set(found) == {f"{ext}-general-0", f"{ext}-general-1", f"{ext}-gpu-0"}
    assert {r.name: r.provider_id for r in ctx.resources("vm")} == {
        n: i["InstanceId"] for n, i in found.items()
    }

    [group] = security_groups(ec2, cluster_tag(ext))
    gid = group["GroupId"]
    # One (protocol, ports, source) per admitted source; AWS merges sources of the same ports.
    rules = {
        (p["IpProtocol"], p["FromPort"], p["ToPort"], source)
        for p in group["IpPermissions"]
        for source in [r["CidrIp"] for r in p.get("IpRanges", [])]
        + [g["GroupId"] for g in p.get("UserIdGroupPairs", [])]
    }
    assert rules == {
        ("tcp", 6443, 6443, "0.0.0.0/0"),
        ("tcp", 6443, 6443, gid),
        ("tcp", 10250, 10250, gid),
        ("udp", 8472, 8472, gid),
        ("udp", 51820, 51821, gid),
    }
    assert all(g["GroupId"] == gid for i in found.values() for g in i["SecurityGroups"])
    assert ctx.live("firewall")[cluster_tag(ext)].provider_id == gid

    # The kubeconfig names the server by its public address and checks its certificate
    # against the cluster's external name, with Flotilla's own CA and admin certificate.
    server = found[f"{ext}-general-0"]
    config = yaml.safe_load(ctx.kubeconfig)
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == f"https://{server['PublicIpAddress']}:6443" == ctx.endpoint
    assert cluster["tls-server-name"] == ext
    server_ca = CertKey.loads(ctx.secrets["k3s-server-ca"])
    assert base64.b64decode(cluster["certificate-authority-data"]).decode() == server_ca.cert
    admin = x509.load_pem_x509_certificate(
        base64.b64decode(config["users"][0]["user"]["client-certificate-data"])
    )
    client_ca = x509.load_pem_x509_certificate(CertKey.loads(ctx.secrets["k3s-client-ca"]).cert.encode())
    admin.verify_directly_issued_by(client_ca)
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"


def test_reconcile_again_changes_nothing(ec2: Ec2Account) -> None:
    driver = ec2.driver()
    ctx = new_context()
    drive(driver, ctx)
    before = {n: i["InstanceId"] for n, i in instances(ec2, ctx).items()}
    records = len(ctx.records)
    events = len(ctx.events)

    outcome = driver.reconcile(ctx)

    assert outcome.done
    assert {n: i["InstanceId"] for n, i in instances(ec2, ctx).items()} == before
    assert len(ctx.records) == records
    assert ctx.events[events:] == []


def test_user_data_carries_the_ca_the_token_labels_and_taints(ec2: Ec2Account) -> None:
    ctx = new_context()
    drive(ec2.driver(), ctx)
    ext = ctx.cluster.external_name
    found = instances(ec2, ctx)
    server_ca = CertKey.loads(ctx.secrets["k3s-server-ca"])
    client_ca = CertKey.loads(ctx.secrets["k3s-client-ca"])
    token = ctx.secrets["k3s-token"]

    server = user_data(ec2, found[f"{ext}-general-0"]["InstanceId"])
    files = {f["path"]: f for f in server["write_files"]}
    tls = "/var/lib/rancher/k3s/server/tls"
    assert files[f"{tls}/server-ca.crt"]["content"] == server_ca.cert
    assert files[f"{tls}/server-ca.key"]["content"] == server_ca.key
    assert files[f"{tls}/server-ca.key"]["permissions"] == "0600"
    assert files[f"{tls}/client-ca.crt"]["content"] == client_ca.cert
    config = k3s_config(server)
    assert config["token"] == token
    assert config["cluster-init"] is True
    assert config["tls-san"] == [ext]
    assert config["flannel-backend"] == "vxlan"  # the security group admits members only
    assert config["node-name"] == f"{ext}-general-0"
    assert config["node-label"] == ["flotilla.io/pool=general", "tier=web"]
    assert "node-taint" not in config
    assert "INSTALL_K3S_VERSION=v1.36.1+k3s1 INSTALL_K3S_EXEC=server sh -" in server["runcmd"][0][2]

    agent = user_data(ec2, found[f"{ext}-gpu-0"]["InstanceId"])
    assert not [f for f in agent["write_files"] if f["path"].startswith(tls)], "CA keys stay on the server"
    config = k3s_config(agent)
    server_ip = found[f"{ext}-general-0"]["PrivateIpAddress"]
    assert config["server"] == f"https://{server_ip}:6443"
    digest = hashlib.sha256(server_ca.cert.encode()).hexdigest()
    assert config["token"] == f"K10{digest}::server:{token}"
    assert config["node-label"] == ["flotilla.io/pool=gpu"]
    assert config["node-taint"] == ["dedicated=gpu:NoSchedule"]
    assert "INSTALL_K3S_EXEC=agent sh -" in agent["runcmd"][0][2]


def test_a_vm_created_before_a_worker_died_is_adopted_not_duplicated(ec2: Ec2Account) -> None:
    driver = ec2.driver()
    ctx = new_context(general=1, gpu=0)
    ext = ctx.cluster.external_name
    assert driver.reconcile(ctx).message.startswith("Firewall")
    ctx.die_before_recording = "vm"

    with pytest.raises(WorkerKilled):
        driver.reconcile(ctx)

    [record] = ctx.resources("vm")
    assert record.state == "planned" and record.provider_id == ""
    assert set(instances(ec2, ctx)) == {f"{ext}-general-0"}  # the provider made it

    drive(driver, ctx)

    found = instances(ec2, ctx)
    assert set(found) == {f"{ext}-general-0"}
    assert record.provider_id == found[f"{ext}-general-0"]["InstanceId"]
    assert any("Adopted VM" in message for _, message in ctx.events)


def test_scaling_down_removes_the_highest_indexes_and_scaling_up_adds_them_back(ec2: Ec2Account) -> None:
    driver = ec2.driver()
    ctx = new_context(general=3, gpu=1)
    ext = ctx.cluster.external_name
    drive(driver, ctx)
    first = {n: i["InstanceId"] for n, i in instances(ec2, ctx).items()}

    ctx.pool_list[0].count = 1
    ctx.events.clear()
    drive(driver, ctx)

    assert set(instances(ec2, ctx)) == {f"{ext}-general-0", f"{ext}-gpu-0"}
    destroyed = [m for _, m in ctx.events if m.startswith("Destroyed VM")]
    assert destroyed == [
        f"Destroyed VM {ext}-general-2 (pool general)",
        f"Destroyed VM {ext}-general-1 (pool general)",
    ]

    ctx.pool_list[0].count = 2
    drive(driver, ctx)
    found = instances(ec2, ctx)
    assert set(found) == {f"{ext}-general-0", f"{ext}-general-1", f"{ext}-gpu-0"}
    assert found[f"{ext}-general-0"]["InstanceId"] == first[f"{ext}-general-0"]
    assert found[f"{ext}-general-1"]["InstanceId"] != first[f"{ext}-general-1"]

    ctx.pool_list[1].removing = True
    drive(driver, ctx)
    assert set(instances(ec2, ctx)) == {f"{ext}-general-0", f"{ext}-general-1"}


def test_the_pool_running_the_server_cannot_be_emptied(ec2: Ec2Account) -> None:
    driver = ec2.driver()
    ctx = new_context(general=1, gpu=1)
    drive(driver, ctx)

    ctx.pool_list[0].count = 0
    with pytest.raises(ProviderError, match="runs the cluster's k3s server") as refused:
        driver.reconcile(ctx)
    assert refused.value.retryable is False
    assert len(instances(ec2, ctx)) == 2


def test_moving_running_vms_back_a_version_is_refused(ec2: Ec2Account) -> None:
    driver = ec2.driver()
    ctx = new_context(general=1, gpu=0)
    drive(driver, ctx)

    ctx.cluster.version = "1.35.4"
    with pytest.raises(ProviderError, match=r"moving back to 1\.35\.4 is not possible") as refused:
        driver.reconcile(ctx)
    assert refused.value.retryable is False


@pytest.mark.parametrize(
    ("running", "target", "reason"),
    [
        ({"1.34.2"}, "1.36.1", r"one minor version at a time \(to 1.35 first\)"),
        ({"1.36.1"}, "1.35.4", "moving back"),
        ({"1.36.2"}, "1.36.1", "moving back"),
        ({"1.36.10"}, "1.36.9", "moving back"),  # numbers, not strings, are compared
        ({"1.35.4", "1.34.1"}, "1.36.1", "to 1.35 first"),
    ],
)
def test_upgrade_paths_that_k3s_cannot_take(running: set[str], target: str, reason: str) -> None:
    with pytest.raises(ProviderError, match=reason) as refused:
        check_upgrade_path(running, target)
    assert refused.value.retryable is False


def test_upgrade_paths_that_k3s_can_take() -> None:
    check_upgrade_path({"1.35.4"}, "1.36.1")
    check_upgrade_path({"1.36.0", "1.35.9"}, "1.36.1")


def test_destroy_leaves_no_instance_and_no_security_group(ec2: Ec2Account) -> None:
    driver = ec2.driver()
    ctx = new_context()
    drive(driver, ctx)
    # A VM recorded but never created (a worker died before asking the provider) is fine too.
    record = VmRecord(role="agent", index=9, version="1.36.1", nonce="0123456789abcdef")
    ctx.plan_resource(
        "vm", f"{ctx.cluster.external_name}-general-9", pool_name="general", data=record.to_data()
    )

    drive(driver, ctx, destroy=True)

    assert instances(ec2, ctx) == {}
    assert security_groups(ec2, cluster_tag(ctx.cluster.external_name)) == []
    assert ctx.resources() == []
    assert driver.destroy(ctx).done
