"""Kubeconfigs: the shape Flotilla accepts from a user, and the server and credentials in one."""

from __future__ import annotations

from typing import Any

import yaml

from config.outbound import CheckedTarget, OutboundRefused, check_url
from orgs.exceptions import FlotillaError

MAX_KUBECONFIG_BYTES = 256 * 1024
SERVER = "the kubeconfig's server"


class KubeconfigInvalid(FlotillaError):
    """An uploaded kubeconfig is not usable as it is."""

    code = "invalid"
    status = 400
    retryable = False

    def __init__(self, reason: str) -> None:
        super().__init__(f"kubeconfig: {reason}", fields={"kubeconfig": [reason]})


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise KubeconfigInvalid(f"{what} must be a mapping, not {_kind_of(value)}")
    return value


def _kind_of(value: Any) -> str:
    return {str: "a string", list: "a list", int: "a number", float: "a number", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _named(doc: dict[str, Any], section: str, inner: str) -> dict[str, dict[str, Any]]:
    """`clusters`, `users` or `contexts` as {name: body}, refusing entries of the wrong shape."""
    entries = doc.get(section)
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise KubeconfigInvalid(
            f"{section} must be a list of {{name, {inner}}} entries, not {_kind_of(entries)}"
        )
    found: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise KubeconfigInvalid(f"every entry of {section} needs a name and a {inner} mapping")
        found[entry["name"]] = _mapping(entry.get(inner), f"{section}[{entry['name']}].{inner}")
    return found


def _chosen(
    doc: Any, context: str | None
) -> tuple[str, dict[str, Any], str, dict[str, Any], str, dict[str, Any]]:
    """The context to use, its body, and its cluster and user (each as name and body)."""
    if not isinstance(doc, dict) or doc.get("kind", "Config") != "Config":
        raise KubeconfigInvalid("not a kubeconfig (expected a YAML mapping of kind Config)")
    contexts = _named(doc, "contexts", "context")
    if not contexts:
        raise KubeconfigInvalid("it has no contexts")
    current = doc.get("current-context")
    if current is not None and not isinstance(current, str):
        raise KubeconfigInvalid("current-context must be a context's name")
    name = context or current or (next(iter(contexts)) if len(contexts) == 1 else None)
    if not name:
        raise KubeconfigInvalid("it has several contexts and no current-context; choose one")
    if name not in contexts:
        raise KubeconfigInvalid(f"it has no context named {name!r} (it has: {', '.join(sorted(contexts))})")
    chosen = contexts[name]
    cluster_name, user_name = chosen.get("cluster"), chosen.get("user") or "user"
    if not isinstance(cluster_name, str) or not isinstance(user_name, str):
        raise KubeconfigInvalid(f"context {name!r} must name its cluster and user")
    clusters = _named(doc, "clusters", "cluster")
    cluster = clusters.get(cluster_name)
    if cluster is None or not cluster.get("server"):
        raise KubeconfigInvalid(f"context {name!r} names no cluster with a server address")
    if not isinstance(cluster["server"], str):
        raise KubeconfigInvalid(f"the server of cluster {cluster_name!r} must be a URL")
    user = _named(doc, "users", "user").get(user_name, {})
    return name, chosen, cluster_name, cluster, user_name, user


def parse_kubeconfig(text: str, context: str | None = None) -> tuple[str, str]:
    """Check an uploaded kubeconfig's shape and keep only one context: returns (kubeconfig, context name).

    The result is self-contained: only that context, its cluster and its user, so nothing else
    of the uploader's file is stored. Nothing is contacted here (`check_server` applies the
    outbound policy; the import's worker makes the first call).
    """
    if not text or not text.strip():
        raise KubeconfigInvalid("the file is empty")
    if len(text.encode()) > MAX_KUBECONFIG_BYTES:
        raise KubeconfigInvalid(f"the file is larger than {MAX_KUBECONFIG_BYTES // 1024} KiB")
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise KubeconfigInvalid(f"not valid YAML{where}") from exc
    name, chosen, cluster_name, cluster, user_name, user = _chosen(doc, context)
    if user.get("exec") or user.get("auth-provider"):
        raise KubeconfigInvalid(
            "credentials that run a command (exec/auth-provider plugins) cannot be used by Flotilla; "
            "use a service-account token or a client certificate"
        )
    for key in ("certificate-authority", "client-certificate", "client-key", "tokenFile"):
        if key in cluster or key in user:
            raise KubeconfigInvalid(f"{key} points to a file on your machine; embed it ({key}-data)")
    if cluster.get("proxy-url"):
        raise KubeconfigInvalid("proxy-url is not supported: Flotilla connects to the server directly")
    for key, value in (*cluster.items(), *user.items()):
        typed = str(key).endswith("-data") or key in ("token", "username", "password", "tls-server-name")
        if typed and not isinstance(value, str):
            raise KubeconfigInvalid(f"{key} must be a string")
    minimal = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": name, "context": {**chosen, "cluster": cluster_name, "user": user_name}}],
        "current-context": name,
    }
    return yaml.safe_dump(minimal, sort_keys=False), name


def stored_parts(kubeconfig: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cluster and user of a stored kubeconfig's current context."""
    try:
        _, _, _, cluster, _, user = _chosen(load_yaml(kubeconfig), None)
    except yaml.YAMLError as exc:
        raise KubeconfigInvalid("the stored kubeconfig is not valid YAML") from exc
    return cluster, user


def identity(kubeconfig: str) -> tuple[str, str]:
    """The server and the user name of a kubeconfig's current context (who speaks to where)."""
    try:
        _, _, _, cluster, user_name, _ = _chosen(load_yaml(kubeconfig), None)
    except yaml.YAMLError as exc:
        raise KubeconfigInvalid("the stored kubeconfig is not valid YAML") from exc
    return str(cluster.get("server", "")), user_name


def server_of(kubeconfig: str) -> str:
    """The API server address of a kubeconfig's current context ("" when it has none)."""
    try:
        return str(stored_parts(kubeconfig)[0].get("server", ""))
    except KubeconfigInvalid:
        return ""


def check_server(kubeconfig: str) -> CheckedTarget:
    """Apply the outbound policy to a kubeconfig's server; `OutboundRefused` names the kubeconfig."""
    cluster, _ = stored_parts(kubeconfig)
    if cluster.get("proxy-url"):
        raise OutboundRefused(
            "kubeconfig", "proxy-url is not supported: Flotilla connects to the server directly"
        )
    return check_url(str(cluster.get("server", "")), purpose=SERVER, field="kubeconfig")


def load_yaml(text: str) -> Any:
    """Parse YAML with libyaml when PyYAML has it (kubeconfigs are parsed on every reconcile pass)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 (safe loader)
