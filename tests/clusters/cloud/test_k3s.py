"""The k3s bootstrap: Flotilla's own PKI, cloud-init, and a kubeconfig a real TLS client accepts."""

from __future__ import annotations

import hashlib
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from clusters.exceptions import ProviderError
from clusters.providers import k3s


def pki() -> k3s.ClusterPki:
    store: dict[str, str] = {}

    def secret(key: str, make: Callable[[], str]) -> str:
        if key not in store:
            store[key] = make()
        return store[key]

    return k3s.ClusterPki.of(secret)


def test_versions_map_to_k3s_releases_and_unknown_ones_are_refused() -> None:
    assert k3s.release("1.36.1") == "v1.36.1+k3s1"
    assert k3s.release("v1.35.4") == "v1.35.4+k3s1"
    with pytest.raises(ProviderError, match="not offered") as refused:
        k3s.release("1.20.0")
    assert refused.value.retryable is False


def test_the_pki_is_made_once_and_read_back() -> None:
    store: dict[str, str] = {}
    calls: list[str] = []

    def secret(key: str, make: Callable[[], str]) -> str:
        if key not in store:
            calls.append(key)
            store[key] = make()
        return store[key]

    first = k3s.ClusterPki.of(secret)
    again = k3s.ClusterPki.of(secret)

    assert first == again
    assert calls == [k3s.SERVER_CA_KEY, k3s.CLIENT_CA_KEY, k3s.ADMIN_KEY, k3s.TOKEN_KEY]
    assert first.server_ca != first.client_ca
    assert len(first.token) == 64


def test_the_admin_certificate_is_a_cluster_admin_signed_by_the_client_ca() -> None:
    made = pki()
    server_ca = x509.load_pem_x509_certificate(made.server_ca.cert.encode())
    client_ca = x509.load_pem_x509_certificate(made.client_ca.cert.encode())
    admin = x509.load_pem_x509_certificate(made.admin.cert.encode())

    assert server_ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    admin.verify_directly_issued_by(client_ca)
    with pytest.raises(ValueError):
        admin.verify_directly_issued_by(server_ca)
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "flotilla-admin"
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    usage = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_agents_get_the_secure_token_with_the_server_ca_hash() -> None:
    made = pki()
    digest = hashlib.sha256(made.server_ca.cert.encode()).hexdigest()
    assert made.agent_token() == f"K10{digest}::server:{made.token}"


def test_cloud_init_of_server_and_agent() -> None:
    made = pki()
    role = k3s.NodeRole(
        node_name="c-0a-p-1",
        pool="p",
        labels={"tier": "db", "flotilla.io/pool": "ignored"},
        taints=[{"key": "only", "effect": "NoExecute"}, {"key": "gpu", "value": "a100"}],
    )

    server = k3s.server_user_data(
        made, role, k3s_release="v1.36.1+k3s1", tls_name="c-0a", flannel_backend="wireguard-native"
    )
    agent = k3s.agent_user_data(made, role, server_address="fd00::5", k3s_release="v1.36.1+k3s1")

    assert server.startswith("#cloud-config\n") and agent.startswith("#cloud-config\n")
    server_doc, agent_doc = yaml.safe_load(server), yaml.safe_load(agent)
    server_config = yaml.safe_load(server_doc["write_files"][-1]["content"])
    agent_config = yaml.safe_load(agent_doc["write_files"][-1]["content"])
    assert server_config["flannel-backend"] == "wireguard-native"
    assert server_config["node-label"] == ["flotilla.io/pool=p", "tier=db"]
    assert server_config["node-taint"] == ["only:NoExecute", "gpu=a100:NoSchedule"]
    assert agent_config["server"] == "https://[fd00::5]:6443"
    # Pods cannot read the user data (token, CA keys) from the metadata service.
    block = ["iptables", "-I", "FORWARD", "1", "-s", "10.42.0.0/16", "-d", "169.254.169.254/32", "-j", "DROP"]
    assert server_doc["bootcmd"] == [block] == agent_doc["bootcmd"]
    assert server_config["cluster-cidr"] == "10.42.0.0/16"
    assert agent_config["token"] == made.agent_token()
    assert "server-ca.key" not in agent


def test_vm_names_fit_a_host_name() -> None:
    from clusters.providers.cloud import vm_name

    assert vm_name("web-0a1b2c3d", "general", 3) == "web-0a1b2c3d-general-3"
    long_name = vm_name("a" * 30 + "-0a1b2c3d", "p" * 30, 12)
    assert len(long_name) <= 63
    assert long_name.endswith("-12")
    assert long_name != vm_name("a" * 30 + "-0a1b2c3d", "p" * 29 + "q", 12)
    assert "--" not in vm_name("a" * 30 + "-0a1b2c3d", "ab-" + "c" * 27, 1)


# --- the kubeconfig against a TLS server shaped like k3s's API server ----------------------------


def _serving_cert(ca: k3s.CertKey, names: list[str]) -> k3s.CertKey:
    """What k3s issues its API server: a certificate from the server CA for its known names."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert.encode())
    ca_key = serialization.load_pem_private_key(ca.key.encode(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "k3s")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return k3s.CertKey(
        cert=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )


class _VersionHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        peer = self.connection.getpeercert()
        subject = dict(item[0] for item in peer["subject"])
        version = {
            "major": "1",
            "minor": "36",
            "gitVersion": "v1.36.1+k3s1",
            "gitCommit": "0" * 40,
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.25",
            "compiler": "gc",
            # Echo who the client certificate says the caller is.
            "platform": subject["commonName"],
        }
        body = json.dumps(version).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[tuple[k3s.ClusterPki, int]]:
    """An HTTPS server with k3s's certificate arrangement, requiring client certificates."""
    made = pki()
    serving = _serving_cert(made.server_ca, ["kubernetes", "localhost", "web-0a1b2c3d"])
    for name, text in {
        "tls.crt": serving.cert,
        "tls.key": serving.key,
        "ca.crt": made.client_ca.cert,
    }.items():
        (tmp_path / name).write_text(text)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    context.load_verify_locations(tmp_path / "ca.crt")
    context.verify_mode = ssl.CERT_REQUIRED
    server = HTTPServer(("127.0.0.1", 0), _VersionHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield made, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_kubeconfig_reaches_the_server_by_address_and_checks_it_by_name(
    api_server: tuple[k3s.ClusterPki, int],
) -> None:
    made, port = api_server
    config = yaml.safe_load(k3s.kubeconfig(made, name="web", address="127.0.0.1", tls_name="web-0a1b2c3d"))
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"

    api = k8s_config.new_client_from_config_dict(config)
    version = k8s.VersionApi(api).get_code(_request_timeout=5)

    assert version.git_version == "v1.36.1+k3s1"
    assert version.platform == "flotilla-admin"  # the server saw Flotilla's admin certificate

    # The same server, checked against a name its certificate does not carry, is refused.
    config["clusters"][0]["cluster"]["tls-server-name"] = "somebody-else"
    other = k8s_config.new_client_from_config_dict(config)
    with pytest.raises(Exception, match=r"(?i)certificate|hostname"):
        k8s.VersionApi(other).get_code(_request_timeout=5)
