"""Kubernetes on plain cloud VMs: k3s set up by cloud-init, with a PKI that Flotilla makes itself.

Flotilla generates the cluster's server CA, client CA and an admin client certificate before any
VM exists and hands the CAs to the first server in its cloud-init user data; k3s keeps CA files it
finds under `/var/lib/rancher/k3s/server/tls/` instead of generating its own. So Flotilla can
write the admin kubeconfig itself as soon as it knows the server's address: no SSH, and no
secret fetched back over an unauthenticated channel.

The API server's certificate is issued by k3s for the names it knows (`kubernetes`, the node's
own addresses) plus `--tls-san <external name>`; the VM's public address is not known before it
boots, so the kubeconfig names the server by address and verifies its certificate against the
external name (`tls-server-name`). That needs no DNS and no metadata lookup, and it is safe
because only this cluster's server holds a certificate from this cluster's own CA.

Agents join with k3s's secure token format (`K10<sha256 of the server CA>::server:<secret>`),
which lets them check that they talk to the right server before they send the secret.

User data is readable from inside a VM through the cloud's metadata service, so cloud-init
blocks the pod network from that service on every boot (pods must not read the CA keys or the
token); read access to user data in the cloud account itself is as good as cluster-admin.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from clusters.exceptions import ProviderError
from clusters.versions import InvalidVersion, KubeVersion

# Kubernetes versions offered on cloud VMs, newest first, and the k3s release of each. Keep in
# step with the k3s releases published on its stable channel.
K3S_RELEASES: dict[str, str] = {
    "1.36.1": "v1.36.1+k3s1",
    "1.35.4": "v1.35.4+k3s1",
}
# k3s's install script; an account may point `k3s_install_url` at a mirror.
INSTALL_URL = "https://get.k3s.io"
API_PORT = 6443
POOL_LABEL = "flotilla.io/pool"
POD_CIDR = "10.42.0.0/16"  # k3s's default cluster CIDR, set explicitly below
METADATA_ADDRESS = "169.254.169.254"
TLS_DIR = "/var/lib/rancher/k3s/server/tls"
CONFIG_PATH = "/etc/rancher/k3s/config.yaml"
CA_DAYS = 3650
ADMIN_DAYS = 1825
ADMIN_USER = "flotilla-admin"

# Keys of the cluster's bootstrap secret (kept encrypted by the reconcile loop).
SERVER_CA_KEY = "k3s-server-ca"
CLIENT_CA_KEY = "k3s-client-ca"
ADMIN_KEY = "k3s-admin"
TOKEN_KEY = "k3s-token"


def release(version: str) -> str:
    """The k3s release of a Kubernetes version Flotilla offers on cloud VMs."""
    try:
        found = K3S_RELEASES.get(str(KubeVersion.from_any(version)))
    except InvalidVersion:
        found = None
    if found is None:
        offered = ", ".join(K3S_RELEASES)
        raise ProviderError(
            f"Kubernetes {version} is not offered on cloud VMs (offered: {offered}).", retryable=False
        )
    return found


@dataclass(frozen=True)
class CertKey:
    """A certificate and its private key, both PEM."""

    cert: str
    key: str

    def dumps(self) -> str:
        return json.dumps({"cert": self.cert, "key": self.key})

    @classmethod
    def loads(cls, raw: str) -> CertKey:
        data = json.loads(raw)
        return cls(cert=str(data["cert"]), key=str(data["key"]))


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def new_ca(common_name: str) -> CertKey:
    """A self-signed CA (ECDSA P-256, as k3s makes its own)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertKey(cert=cert.public_bytes(serialization.Encoding.PEM).decode(), key=_pem(key))


def new_client_cert(ca: CertKey, common_name: str, group: str) -> CertKey:
    """A client certificate signed by `ca` (the API server maps CN to user, O to group)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert.encode())
    ca_key = serialization.load_pem_private_key(ca.key.encode(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ProviderError("The cluster's client CA key is not an EC key.", retryable=False)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, group),
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=ADMIN_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return CertKey(cert=cert.public_bytes(serialization.Encoding.PEM).decode(), key=_pem(key))


@dataclass(frozen=True)
class ClusterPki:
    """Everything secret a k3s cluster of Flotilla's starts from."""

    server_ca: CertKey
    client_ca: CertKey
    admin: CertKey
    token: str

    @classmethod
    def of(cls, secret: Callable[[str, Callable[[], str]], str]) -> ClusterPki:
        """Made once per cluster through the reconcile loop's `ctx.secret`, then read back."""
        server_ca = CertKey.loads(secret(SERVER_CA_KEY, lambda: new_ca("flotilla-server-ca").dumps()))
        client_ca = CertKey.loads(secret(CLIENT_CA_KEY, lambda: new_ca("flotilla-client-ca").dumps()))
        admin = CertKey.loads(
            secret(ADMIN_KEY, lambda: new_client_cert(client_ca, ADMIN_USER, "system:masters").dumps())
        )
        token = secret(TOKEN_KEY, lambda: secrets.token_hex(32))
        return cls(server_ca=server_ca, client_ca=client_ca, admin=admin, token=token)

    def agent_token(self) -> str:
        """The secure join token: agents check the server's CA against its hash before joining."""
        digest = hashlib.sha256(self.server_ca.cert.encode()).hexdigest()
        return f"K10{digest}::server:{self.token}"


@dataclass(frozen=True)
class NodeRole:
    """What one VM becomes: its k3s node name, pool, labels and taints."""

    node_name: str
    pool: str
    labels: Mapping[str, str]
    taints: Sequence[Mapping[str, str]]


def _node_settings(role: NodeRole) -> dict[str, Any]:
    labels = [f"{POOL_LABEL}={role.pool}"] + [
        f"{key}={value}" for key, value in role.labels.items() if key != POOL_LABEL
    ]
    taints = []
    for taint in role.taints:
        value = taint.get("value", "")
        head = f"{taint['key']}={value}" if value else str(taint["key"])
        taints.append(f"{head}:{taint.get('effect', 'NoSchedule')}")
    settings: dict[str, Any] = {"node-name": role.node_name, "node-label": labels}
    if taints:
        settings["node-taint"] = taints
    return settings


def install_script(k3s_release: str, mode: str, install_url: str) -> str:
    """The shell line that installs (or upgrades in place) k3s `mode` ("server" or "agent").

    The script is fetched over HTTPS (retried while the VM's network comes up) and reads
    CONFIG_PATH itself, so the node keeps its settings; INSTALL_K3S_VERSION pins the release.
    """
    return (
        f"curl -sfL --retry 20 --retry-delay 3 --retry-connrefused {shlex.quote(install_url)} | "
        f"INSTALL_K3S_VERSION={shlex.quote(k3s_release)} INSTALL_K3S_EXEC={shlex.quote(mode)} sh -"
    )


def _install_command(k3s_release: str, mode: str, install_url: str) -> list[str]:
    return ["sh", "-c", install_script(k3s_release, mode, install_url)]


def _cloud_config(files: list[dict[str, str]], command: list[str]) -> str:
    document = {
        # The user data holds the join token (and, on the server, the CA keys), and every cloud
        # serves user data at the link-local metadata address: pods must not reach it. Every
        # boot, before k3s starts, traffic from the pod network to that address is dropped.
        "bootcmd": [
            ["iptables", "-I", "FORWARD", "1", "-s", POD_CIDR, "-d", f"{METADATA_ADDRESS}/32", "-j", "DROP"]
        ],
        "write_files": files,
        "runcmd": [command],
    }
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, width=10_000)


def server_user_data(
    pki: ClusterPki,
    role: NodeRole,
    *,
    k3s_release: str,
    tls_name: str,
    flannel_backend: str,
    install_url: str = INSTALL_URL,
) -> str:
    """Cloud-init of the first server: the CAs in k3s's TLS directory, its config, the install."""
    config = {
        "token": pki.token,
        "cluster-init": True,
        "tls-san": [tls_name],
        "flannel-backend": flannel_backend,
        "cluster-cidr": POD_CIDR,
        "write-kubeconfig-mode": "0600",
        **_node_settings(role),
    }
    files = [
        {"path": f"{TLS_DIR}/server-ca.crt", "permissions": "0644", "content": pki.server_ca.cert},
        {"path": f"{TLS_DIR}/server-ca.key", "permissions": "0600", "content": pki.server_ca.key},
        {"path": f"{TLS_DIR}/client-ca.crt", "permissions": "0644", "content": pki.client_ca.cert},
        {"path": f"{TLS_DIR}/client-ca.key", "permissions": "0600", "content": pki.client_ca.key},
        {"path": CONFIG_PATH, "permissions": "0600", "content": yaml.safe_dump(config, sort_keys=False)},
    ]
    return _cloud_config(files, _install_command(k3s_release, "server", install_url))


def agent_user_data(
    pki: ClusterPki, role: NodeRole, *, server_address: str, k3s_release: str, install_url: str = INSTALL_URL
) -> str:
    """Cloud-init of an agent: join the server at its (private) address with the secure token."""
    config = {
        "server": endpoint(server_address),
        "token": pki.agent_token(),
        **_node_settings(role),
    }
    files = [{"path": CONFIG_PATH, "permissions": "0600", "content": yaml.safe_dump(config, sort_keys=False)}]
    return _cloud_config(files, _install_command(k3s_release, "agent", install_url))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kubeconfig(pki: ClusterPki, *, name: str, address: str, tls_name: str) -> str:
    """The admin kubeconfig: the server by address, its certificate checked against `tls_name`."""
    user = f"{ADMIN_USER}@{name}"
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": endpoint(address),
                    "certificate-authority-data": _b64(pki.server_ca.cert),
                    "tls-server-name": tls_name,
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(pki.admin.cert),
                    "client-key-data": _b64(pki.admin.key),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
        "current-context": name,
    }
    return yaml.safe_dump(document, sort_keys=False)


def endpoint(address: str) -> str:
    """The API server URL of a server address (IPv6 in brackets)."""
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}:{API_PORT}"
