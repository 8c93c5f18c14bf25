"""The outbound policy (config.outbound) with the normal settings: every address class that is not
public is refused, and so are proxies, queries, fragments, user parts and plain http; the operator's
allow-list opens exactly what it names."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from django.test import override_settings

from clusters import kube
from config.outbound import OutboundRefused, check_url, is_own_address, parse_allowance

REFUSED = [
    ("https://127.0.0.1:5432", "loopback"),
    ("https://127.1:6443", "loopback"),
    ("https://2130706433:6443", "loopback"),  # 127.0.0.1 as one decimal number
    ("https://0x7f000001:6443", "loopback"),  # ...and in hex
    ("https://localhost:6443", "loopback"),  # a name that resolves to loopback
    ("https://[::1]:6443", "loopback"),
    ("https://[::ffff:127.0.0.1]:6443", "loopback address (in IPv6 form)"),
    ("https://[::127.0.0.1]:6443", "loopback address (in IPv6 form)"),  # IPv4-compatible
    ("https://[2002:7f00:1::]:6443", "loopback address (in IPv6 form)"),  # 6to4 of 127.0.0.1
    ("https://[64:ff9b::a00:1]:6443", "private address (in IPv6 form)"),  # NAT64 of 10.0.0.1
    ("https://0.0.0.0:6443", "unspecified"),
    ("https://10.1.2.3:6443", "private"),
    ("https://172.16.0.1:6443", "private"),
    ("https://172.31.255.254:6443", "private"),
    ("https://192.168.1.1:6443", "private"),
    ("https://[fd00::1]:6443", "private"),
    ("https://169.254.169.254", "link-local"),
    ("https://[fe80::1]:6443", "link-local"),
    ("https://100.64.0.1:6443", "carrier-grade NAT"),
    ("https://224.0.0.1:6443", "multicast"),
    ("https://240.0.0.1:6443", "reserved"),
]


@pytest.mark.parametrize(("url", "says"), REFUSED)
def test_non_public_addresses_are_refused(url: str, says: str) -> None:
    with pytest.raises(OutboundRefused) as refused:
        check_url(url, purpose="the kubeconfig's server", field="kubeconfig")
    assert says in refused.value.reason
    assert refused.value.status == 400 and refused.value.retryable is False
    assert "FLOTILLA_OUTBOUND_ALLOW" in refused.value.fields["kubeconfig"][0]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://203.0.113.9/version?", "query"),  # the "?" that turned /version into a query
        ("https://8.8.8.8:6443/metrics?x=1", "query"),
        ("https://8.8.8.8:6443/#frag", "fragment"),
        ("https://admin:secret@8.8.8.8:6443", "user name or password"),
        ("http://8.8.8.8:6443", "https://"),
        ("ftp://8.8.8.8/", "https:// URL"),
        ("https://:6443", "https:// URL"),
        ("https://8.8.8.8:99999", "not a valid URL"),
        ("https://no-such-host.invalid:6443", "does not resolve"),
    ],
)
def test_url_shapes_that_are_refused(url: str, says: str) -> None:
    with pytest.raises(OutboundRefused) as refused:
        check_url(url, purpose="the kubeconfig's server", field="kubeconfig")
    assert says in refused.value.reason


def test_a_public_address_passes_and_is_pinned() -> None:
    target = check_url("https://8.8.8.8:6443/k8s/clusters/c-1", purpose="server", field="kubeconfig")
    assert (target.address, target.port, target.path) == ("8.8.8.8", 6443, "/k8s/clusters/c-1")
    assert target.pinned_url == "https://8.8.8.8:6443/k8s/clusters/c-1" and target.host_is_address


def test_the_host_s_own_addresses_are_refused() -> None:
    # The address this host would send from (a UDP "connect" sends nothing).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))
        except OSError:
            pytest.skip("this host has no non-loopback IPv4 route")
        own = probe.getsockname()[0]
    assert is_own_address(ipaddress.ip_address(own))
    assert not is_own_address(ipaddress.ip_address("8.8.8.8"))
    with pytest.raises(OutboundRefused, match=own.replace(".", r"\.")):
        check_url(f"https://{own}:6443", purpose="server", field="kubeconfig")


def test_the_allow_list_opens_exactly_what_it_names() -> None:
    with override_settings(FLOTILLA_OUTBOUND_ALLOW=["127.0.0.1:6443", "10.20.0.0/16", "[::1]:8443"]):
        assert check_url("https://127.0.0.1:6443", purpose="s", field="f").address == "127.0.0.1"
        # An allow-listed target may use plain http (the operator's own network).
        assert check_url("http://127.0.0.1:6443", purpose="s", field="f").scheme == "http"
        assert check_url("https://10.20.3.4:1", purpose="s", field="f").address == "10.20.3.4"
        assert check_url("https://[::1]:8443", purpose="s", field="f").pinned_url == "https://[::1]:8443"
        for other in ("https://127.0.0.1:5432", "https://10.21.0.1", "https://[::1]:6443"):
            with pytest.raises(OutboundRefused):
                check_url(other, purpose="s", field="f")
        # A query stays refused, allow-listed or not.
        with pytest.raises(OutboundRefused, match="query"):
            check_url("https://127.0.0.1:6443/metrics?", purpose="s", field="f")
    with pytest.raises(ValueError, match="neither a CIDR nor host:port"):
        parse_allowance(["not an entry"])


def _kubeconfig(server: object, *, cluster_extra: str = "") -> str:
    return (
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters:\n- name: k\n  cluster:\n    server: {server}\n{cluster_extra}"
        "users:\n- name: u\n  user:\n    token: t\n"
        "contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n"
    )


def test_the_kubeconfig_check_refuses_proxies_and_private_servers() -> None:
    with pytest.raises(kube.KubeconfigInvalid, match="proxy-url"):
        kube.parse_kubeconfig(
            _kubeconfig("https://8.8.8.8", cluster_extra="    proxy-url: http://10.0.0.1:3128\n")
        )
    text, _ = kube.parse_kubeconfig(_kubeconfig("https://127.0.0.1:5432"))
    with pytest.raises(OutboundRefused) as refused:
        kube.check_server(text)
    assert "kubeconfig" in refused.value.fields and "loopback" in refused.value.reason


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("kind: Config\ncontexts:\n- name: c\n  context: just-a-string\n", "must be a mapping, not a string"),
        ("kind: Config\ncontexts: {c: {cluster: k}}\n", "contexts must be a list"),
        (
            "kind: Config\ncurrent-context: c\ncontexts:\n- {name: c, context: {cluster: k, user: u}}\n"
            "clusters: {k: {server: x}}\n",
            "clusters must be a list",
        ),
        (
            "kind: Config\ncurrent-context: c\ncontexts:\n- {name: c, context: {cluster: k, user: u}}\n"
            "clusters:\n- {name: k, cluster: {server: 6443}}\n",
            "must be a URL",
        ),
        ("kind: Config\ncurrent-context: [a]\ncontexts:\n- {name: c, context: {}}\n", "current-context"),
        ("kind: Config\ncontexts:\n- {name: 5, context: {}}\n", "needs a name"),
        (
            "kind: Config\ncurrent-context: c\ncontexts:\n- {name: c, context: {cluster: [k], user: u}}\n",
            "must name its cluster",
        ),
        (_kubeconfig("https://8.8.8.8").replace("token: t", "token: 12"), "token must be a string"),
    ],
)
def test_oddly_typed_kubeconfigs_are_clear_errors(text: str, says: str) -> None:
    with pytest.raises(kube.KubeconfigInvalid) as invalid:
        kube.parse_kubeconfig(text)
    assert says in invalid.value.message and invalid.value.status == 400
    assert "kubeconfig" in invalid.value.fields
