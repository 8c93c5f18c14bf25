"""An app's spec is checked by Kubernetes' own rules before anything is sent (no database, no cluster)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from clusters.workloads.rules import ENV_NAME_RULE
from clusters.workloads.spec import (
    AppSpec,
    EnvVar,
    FrozenMap,
    HealthCheck,
    Port,
    Resources,
    VolumeMount,
    image_problems,
    is_reserved_key,
    parse_app_spec,
    parse_health_check,
    parse_quantity,
    validate_app_name,
    validate_namespace,
    validate_secrets,
)
from orgs.exceptions import ValidationFailed


def refused(data: dict[str, Any], **kwargs: Any) -> dict[str, list[str]]:
    """The fields (and their reasons) parse_app_spec refuses `data` for."""
    with pytest.raises(ValidationFailed) as caught:
        parse_app_spec(data, **kwargs)
    return caught.value.fields


def spec(**fields: Any) -> AppSpec:
    """A checked spec of nginx with the given fields."""
    return parse_app_spec({"image": "nginx:1.27", **fields})


FULL = {
    "image": "registry.example.com:5000/team/web:v2",
    "replicas": 3,
    "command": ["/bin/server"],
    "args": ["--port", "8080"],
    "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "my.env-name", "value": ""}],
    "ports": [
        {"port": 8080, "protocol": "TCP", "name": "http"},
        {"port": 53, "protocol": "UDP", "name": "dns"},
    ],
    "resources": {"cpu_request": "250m", "cpu_limit": "1", "memory_request": "128Mi", "memory_limit": "1Gi"},
    "readiness": {"type": "http", "path": "/healthz", "port": 8080, "period": 5},
    "liveness": "tcp:8080",
    "labels": {"tier": "web", "example.com/team": "core", "empty": ""},
    "annotations": {"example.com/note": "a long note: with anything in it"},
    "volumes": [{"claim": "data", "mount_path": "/var/lib/data", "read_only": True, "sub_path": "web"}],
    "progress_deadline": 300,
}


# --- Names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["web", "a", "web-2", "a" * 63, "api-v1"])
def test_app_names_that_kubernetes_takes(name: str) -> None:
    assert validate_app_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "is required"),
        (None, "is required"),
        (7, "must be a string"),
        ("Web", "DNS-1035 label"),
        ("web_app", "DNS-1035 label"),
        ("web.app", "DNS-1035 label"),
        ("-web", "DNS-1035 label"),
        ("web-", "DNS-1035 label"),
        ("1web", "starting with a letter"),  # a Service name must start with a letter
        ("a" * 64, "at most 63 characters"),
        ("web\n", "DNS-1035 label"),
        ("we b", "DNS-1035 label"),
    ],
)
def test_app_names_refused(name: Any, reason: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_app_name(name, "app.name")
    assert reason in caught.value.fields["app.name"][0]


@pytest.mark.parametrize("name", ["default", "team-a", "1st", "a" * 63])
def test_namespaces_that_kubernetes_takes(name: str) -> None:
    assert validate_namespace(name) == name


@pytest.mark.parametrize("name", ["", "Team", "team_a", "team.a", "-team", "team-", "a" * 64, "kube system"])
def test_namespaces_refused(name: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_namespace(name)
    assert list(caught.value.fields) == ["namespace"]


# --- Images ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "nginx:1.27",
        "nginx:1.27-alpine",
        "library/nginx:latest",
        "docker.io/library/nginx:1.27",
        "registry.example.com/team/app:v2",
        "registry.example.com:5000/team/app:v2",
        "localhost:5000/app",
        "localhost/app:1",
        "127.0.0.1:5000/app:1",
        "[::1]:5000/app:1",
        "Registry.Example.com/app",  # a host may have capitals; the path may not
        "my_app",
        "my__app",
        "my-----app",
        "a.b/c.d/e_f",
        "app:V1_0.rc-1",
        "app:" + "t" * 128,
        "app@sha256:" + "a" * 64,
        "app:1.0@sha256:" + "0123456789abcdef" * 4,
        "registry.example.com:5000/team/app:v2@sha256:" + "f" * 64,
        "app@sha512:" + "b" * 128,
    ],
)
def test_images_by_the_reference_grammar(image: str) -> None:
    assert image_problems(image) == []
    assert spec(image=image).image == image


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("", "is required"),
        (None, "must be a string"),
        (["nginx"], "must be a string"),
        ("nginx 1.27", "must not contain spaces"),
        (" nginx", "must not contain spaces"),
        ("nginx\t", "must not contain spaces"),
        ("Nginx", "must be lowercase"),
        ("team/MyApp:1", "must be lowercase"),
        ("nginx:", "the tag must be"),
        ("nginx:.hidden", "the tag must be"),
        ("nginx:-x", "the tag must be"),
        ("nginx:a/b", "the registry must be"),  # a ':' before a '/' is a registry's port
        ("nginx:" + "t" * 129, "the tag must be"),
        ("nginx:1:2", "the repository path"),
        ("app@sha256:" + "a" * 63, "the digest must be"),
        ("app@sha256:" + "A" * 64, "the digest must be"),
        ("app@md5:" + "a" * 32, "the digest must be"),
        ("app@", "the digest must be"),
        ("app@sha256:" + "a" * 64 + "@sha256:" + "a" * 64, "the digest must be"),
        ("registry.example.com:99999/app", "the registry must be"),
        ("registry.example.com:0/app", "the registry must be"),
        ("registry..example.com/app", "the registry must be"),
        ("-registry.example.com/app", "the registry must be"),
        ("registry.example.com/", "the repository path is required"),
        (":1.0", "the repository path is required"),
        ("/app", "the repository path"),
        ("team//app", "the repository path"),
        ("app.", "the repository path"),
        ("_app", "the repository path"),
        ("app___x", "the repository path"),
        ("a" * 256, "at most 255 characters"),
        ("a/" * 1025, "at most 2048 characters"),
    ],
)
def test_images_refused(image: Any, reason: str) -> None:
    fields = refused({"image": image})
    assert list(fields) == ["image"]
    assert any(reason in problem for problem in fields["image"]), fields


def test_an_image_is_required_for_a_new_app_only() -> None:
    assert refused({"replicas": 2}) == {"image": ["is required"]}
    assert parse_app_spec({"replicas": 2}, base=spec()).image == "nginx:1.27"


# --- Replicas, command, args, progress deadline ----------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (1, 1), (1000, 1000), ("3", 3)])
def test_replicas(value: Any, expected: int) -> None:
    assert spec(replicas=value).replicas == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-1, "from 0 to 1000"),
        (1001, "from 0 to 1000"),
        (True, "whole number"),
        (False, "whole number"),
        (1.5, "whole number"),
        ("three", "whole number"),
        (None, "whole number"),
        ([2], "whole number"),
    ],
)
def test_replicas_refused(value: Any, reason: str) -> None:
    fields = refused({"image": "nginx", "replicas": value})
    assert reason in fields["replicas"][0]


def test_command_and_args_are_lists_of_strings() -> None:
    checked = spec(command=["sh", "-c", "echo $(HOME)"], args=[""])
    assert checked.command == ("sh", "-c", "echo $(HOME)")
    assert checked.args == ("",)
    assert spec(command=None).command == ()


@pytest.mark.parametrize(
    ("field", "value", "bad"),
    [
        ("command", "sh -c x", "command"),
        ("command", ["sh", 1], "command[1]"),
        ("args", {"a": "b"}, "args"),
        ("args", ["ok", "x" * (32 * 1024 + 1)], "args[1]"),
        ("args", [None], "args[0]"),
    ],
)
def test_command_and_args_refused(field: str, value: Any, bad: str) -> None:
    assert bad in refused({"image": "nginx", field: value})


@pytest.mark.parametrize(
    ("value", "ok"), [(10, True), (3600, True), (600, True), (9, False), (3601, False), (True, False)]
)
def test_progress_deadline(value: Any, ok: bool) -> None:
    if ok:
        assert spec(progress_deadline=value).progress_deadline == value
    else:
        assert "progress_deadline" in refused({"image": "nginx", "progress_deadline": value})


# --- Quantities ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", Decimal("0.25")),
        ("1", Decimal(1)),
        ("0.5", Decimal("0.5")),
        ("1.5", Decimal("1.5")),
        (".5", Decimal("0.5")),
        ("5.", Decimal(5)),
        ("+2", Decimal(2)),
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        ("1e-3", Decimal("0.001")),
        ("2E", Decimal(2 * 10**18)),  # E alone is exa, not an exponent
        ("100k", Decimal(100_000)),
        ("128M", Decimal(128_000_000)),
        ("128Mi", Decimal(128 * 2**20)),
        ("1Gi", Decimal(2**30)),
        ("1.5Gi", Decimal(3 * 2**29)),
        ("1Ki", Decimal(1024)),
        ("2Ti", Decimal(2 * 2**40)),
        ("1Pi", Decimal(2**50)),
        ("1Ei", Decimal(2**60)),
        ("500u", Decimal("0.0005")),
        ("10n", Decimal("1e-8")),
        ("-1", Decimal(-1)),  # the grammar has a sign; the app's rules refuse it
        ("0", Decimal(0)),
    ],
)
def test_quantities_by_the_kubernetes_grammar(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "m",
        "Mi",
        "12MB",
        "1mi",
        "1 Gi",
        " 1",
        "1Gi ",
        "1.2.3",
        "1e",
        "1e3.5",
        "e3",
        "0x10",
        "1,5",
        "1GiB",
        "10Ki3",
    ],
)
def test_quantities_refused_by_the_grammar(text: str) -> None:
    with pytest.raises(ValueError, match="Kubernetes quantity"):
        parse_quantity(text)


@pytest.mark.parametrize("text", ["1e31", "9Ei", "1e19"])
def test_quantities_out_of_range(text: str) -> None:
    with pytest.raises(ValueError, match=r"exponent|too large"):
        parse_quantity(text)


@pytest.mark.parametrize(
    "resources",
    [
        {"cpu_request": "250m", "cpu_limit": "500m"},
        {"cpu_request": "0.5", "cpu_limit": "1.5"},
        {"cpu_request": "1e3", "cpu_limit": "2e3"},
        {"cpu_request": "1m"},
        {"cpu_limit": 2},  # a JSON number is a quantity too
        {"cpu_request": 0.5},
        {"memory_request": "128Mi", "memory_limit": "1Gi"},
        {"memory_request": "1Gi", "memory_limit": "1Gi"},
        {"memory_request": "1G", "memory_limit": "1Gi"},
        {"memory_limit": "512M"},
        {"cpu_request": "", "memory_limit": None},
    ],
)
def test_resources(resources: dict[str, Any]) -> None:
    checked = spec(resources=resources).resources
    for key, value in resources.items():
        assert getattr(checked, key) == ("" if value is None else str(value))


@pytest.mark.parametrize(
    ("resources", "field", "reason"),
    [
        ({"memory_limit": "12MB"}, "resources.memory_limit", "Kubernetes quantity"),
        ({"cpu_request": "-1"}, "resources.cpu_request", "more than 0"),
        ({"cpu_request": "0"}, "resources.cpu_request", "more than 0"),
        ({"memory_request": "0Mi"}, "resources.memory_request", "more than 0"),
        ({"cpu_limit": "m"}, "resources.cpu_limit", "Kubernetes quantity"),
        ({"cpu_limit": "100n"}, "resources.cpu_limit", "at least 1m"),
        ({"cpu_limit": True}, "resources.cpu_limit", "Kubernetes quantity"),
        ({"cpu_limit": ["1"]}, "resources.cpu_limit", "Kubernetes quantity"),
        ({"cpu_request": "2", "cpu_limit": "1"}, "resources.cpu_request", "not be more than cpu_limit (1)"),
        ({"cpu_request": "1001m", "cpu_limit": "1"}, "resources.cpu_request", "not be more than cpu_limit"),
        ({"memory_request": "2Gi", "memory_limit": "1Gi"}, "resources.memory_request", "memory_limit (1Gi)"),
        ({"memory_request": "1Gi", "memory_limit": "1G"}, "resources.memory_request", "memory_limit (1G)"),
        ({"gpu": "1"}, "resources.gpu", "unknown field"),
        ("250m", "resources", "must be a mapping"),
    ],
)
def test_resources_refused(resources: Any, field: str, reason: str) -> None:
    fields = refused({"image": "nginx", "resources": resources})
    assert reason in fields[field][0], fields


# --- Ports -------------------------------------------------------------------------------------------


def test_ports_as_numbers_or_mappings() -> None:
    checked = spec(
        ports=[
            80,
            "443",
            {"port": 53, "protocol": "udp", "name": "dns"},
            {"port": 53},
            {"port": 9, "protocol": "SCTP"},
        ]
    )
    assert checked.ports == (
        Port(80),
        Port(443),
        Port(53, "UDP", "dns"),
        Port(53, "TCP"),  # the same number over another protocol is another port
        Port(9, "SCTP"),
    )


@pytest.mark.parametrize("name", ["http", "web-2", "a", "a" * 15, "8080a", "h-t-t-p"])
def test_port_names_by_the_iana_rule(name: str) -> None:
    assert spec(ports=[{"port": 80, "name": name}]).ports[0].name == name


@pytest.mark.parametrize(
    ("ports", "field", "reason"),
    [
        ([0], "ports[0].port", "from 1 to 65535"),
        ([65536], "ports[0].port", "from 1 to 65535"),
        ([-80], "ports[0].port", "from 1 to 65535"),
        ([True], "ports[0].port", "whole number"),
        (["http"], "ports[0].port", "whole number"),
        ([{"protocol": "TCP"}], "ports[0].port", "whole number"),
        ([80, 8080, 80], "ports[2].port", "80/TCP is already ports[0]"),
        (
            [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "udp"}],
            "ports[1].port",
            "53/UDP is already",
        ),
        ([{"port": 80, "protocol": "HTTP"}], "ports[0].protocol", "TCP, UDP or SCTP"),
        ([{"port": 80, "name": "HTTP"}], "ports[0].name", "IANA service name"),
        ([{"port": 80, "name": "a" * 16}], "ports[0].name", "at most 15"),
        ([{"port": 80, "name": "8080"}], "ports[0].name", "at least one letter"),
        ([{"port": 80, "name": "-http"}], "ports[0].name", "IANA service name"),
        ([{"port": 80, "name": "http-"}], "ports[0].name", "IANA service name"),
        ([{"port": 80, "name": "ht--tp"}], "ports[0].name", "without '--'"),
        ([{"port": 80, "name": "ht_tp"}], "ports[0].name", "IANA service name"),
        ([{"port": 80, "name": 5}], "ports[0].name", "must be a string"),
        (
            [{"port": 80, "name": "web"}, {"port": 81, "name": "web"}],
            "ports[1].name",
            "already the name of ports[0]",
        ),
        ([{"port": 80, "target": 8080}], "ports[0].target", "unknown field"),
        (80, "ports", "must be a list"),
    ],
)
def test_ports_refused(ports: Any, field: str, reason: str) -> None:
    fields = refused({"image": "nginx", "ports": ports})
    assert reason in fields[field][0], fields


# --- Environment and secret variables -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["FOO", "foo", "_X", "MY_ENV.NAME", "my.env-name", "-dash", ".hidden", "A1", "x..y"]
)
def test_env_names_by_the_kubernetes_rule(name: str) -> None:
    assert spec(env=[{"name": name, "value": "v"}]).env == (EnvVar(name, "v"),)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("1ABC", "not starting with a digit"),  # the relaxed rule still refuses a leading digit
        ("9", "not starting with a digit"),
        ("MY VAR", "environment variable name"),
        ("A=B", "environment variable name"),
        ("ÄPFEL", "environment variable name"),
        ("a/b", "environment variable name"),
        (".", "must not be '.'"),
        ("..", "must not be '..'"),
        ("..x", "must not start with '..'"),
        ("", "is required"),
        (None, "is required"),
        (5, "must be a string"),
    ],
)
def test_env_names_refused(name: Any, reason: str) -> None:
    fields = refused({"image": "nginx", "env": [{"name": "OK", "value": "1"}, {"name": name, "value": "v"}]})
    assert any(reason in problem for problem in fields["env[1].name"]), fields


def test_env_as_a_mapping_keeps_its_order() -> None:
    checked = spec(env={"B": "2", "A": "1", "C": "$(A)-$(B)"})
    assert [var.name for var in checked.env] == ["B", "A", "C"]
    assert spec(env={"A": "1"}) == spec(env=[{"name": "A", "value": "1"}])
    assert spec(env=[{"name": "EMPTY"}]).env == (EnvVar("EMPTY", ""),)


@pytest.mark.parametrize(
    ("env", "field", "reason"),
    [
        ([{"name": "A", "value": "1"}, {"name": "A", "value": "2"}], "env[1].name", "A is already env[0]"),
        ([{"name": "A", "value": 1}], "env[0].value", "must be a string"),
        ({"A": None}, "env[0].value", "must be a string"),
        ({"A": "x" * (32 * 1024 + 1)}, "env[0].value", "at most 32 KiB"),
        ({"A": "é" * (16 * 1024 + 1)}, "env[0].value", "at most 32 KiB"),  # counted in bytes
        (["A=1"], "env[0]", "must be a mapping"),
        ([{"name": "A", "value": "1", "secret": True}], "env[0].secret", "unknown field"),
        ("A=1", "env", "must be a list"),
    ],
)
def test_env_refused(env: Any, field: str, reason: str) -> None:
    fields = refused({"image": "nginx", "env": env})
    assert reason in fields[field][0], fields


def test_an_env_name_may_not_be_a_secret_name_too() -> None:
    fields = refused({"image": "nginx", "env": {"A": "1", "TOKEN": "x"}}, secret_keys=["TOKEN"])
    assert fields == {"env[1].name": ["TOKEN is also the name of a secret variable"]}


def test_secret_keys_are_names_from_the_caller() -> None:
    checked = parse_app_spec(
        {"image": "nginx", "secret_keys": ["INVENTED"]}, secret_keys=["B_KEY", "A_KEY", "A_KEY"]
    )
    assert checked.secret_keys == ("A_KEY", "B_KEY")
    # Stored data carries its secret names; without the caller's, they are kept.
    assert parse_app_spec(checked.to_dict()).secret_keys == ("A_KEY", "B_KEY")
    assert parse_app_spec({"replicas": 2}, base=checked).secret_keys == ("A_KEY", "B_KEY")
    assert parse_app_spec({"replicas": 2}, base=checked, secret_keys=[]).secret_keys == ()
    assert refused({"image": "nginx"}, secret_keys=["1BAD"]) == {"secrets.1BAD": [ENV_NAME_RULE]}


def test_secrets_by_name() -> None:
    assert validate_secrets({"TOKEN": "s3cret", "API.KEY": "", "-x": "y"}) == {
        "-x": "y",
        "API.KEY": "",
        "TOKEN": "s3cret",
    }
    assert validate_secrets({}) == {}


@pytest.mark.parametrize(
    ("values", "env_names", "field", "reason"),
    [
        ({"1TOKEN": "s3cret-value"}, (), "secrets.1TOKEN", "not starting with a digit"),
        ({"MY TOKEN": "s3cret-value"}, (), "secrets.MY TOKEN", "environment variable name"),
        ({"..": "s3cret-value"}, (), "secrets...", "must not be '..'"),
        ({"T" * 254: "s3cret-value"}, (), "secrets." + "T" * 254, "at most 253 characters"),
        ({"TOKEN": 12345}, (), "secrets.TOKEN", "the value must be a string"),
        ({"TOKEN": "s3cret-value"}, ("TOKEN",), "secrets.TOKEN", "also the name of a plain variable"),
        ({"A": "x" * (300 * 1024), "B": "y" * (300 * 1024)}, (), "secrets", "at most 512 KiB in all"),
        (["TOKEN"], (), "secrets", "must be a mapping"),
    ],
)
def test_secrets_refused_without_repeating_a_value(
    values: Any, env_names: tuple[str, ...], field: str, reason: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_secrets(values, env_names=env_names)
    assert reason in caught.value.fields[field][0], caught.value.fields
    said = caught.value.message + repr(caught.value.fields)
    assert "s3cret-value" not in said and "xxxx" not in said and "12345" not in said


def test_several_secrets_refused_at_once() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_secrets({"1A": "v", "OK": "v", "B B": "v"})
    assert set(caught.value.fields) == {"secrets.1A", "secrets.B B"}


# --- Health checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("http:/healthz:8080", HealthCheck("http", path="/healthz", port=8080)),
        ("http:/:80", HealthCheck("http", path="/", port=80)),
        ("http:/a:b/c?x=1:8080", HealthCheck("http", path="/a:b/c?x=1", port=8080)),
        ("HTTP:/ready:1", HealthCheck("http", path="/ready", port=1)),
        ("tcp:5432", HealthCheck("tcp", port=5432)),
        ("tcp:65535", HealthCheck("tcp", port=65535)),
        (" tcp:5432 ", HealthCheck("tcp", port=5432)),
        ("exec:cat /tmp/ok", HealthCheck("exec", command=("cat", "/tmp/ok"))),
        ("exec:sh -c 'test -f /tmp/ok'", HealthCheck("exec", command=("sh", "-c", "test -f /tmp/ok"))),
    ],
)
def test_health_check_texts(text: str, check: HealthCheck) -> None:
    assert parse_health_check(text, "readiness") == check
    assert parse_health_check(check.to_text(), "readiness") == check
    assert spec(readiness=text, liveness=text).liveness == check


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("http:healthz:8080", "readiness.path", "must start with '/'"),
        ("http:/healthz", "readiness.port", "is required"),
        ("http:/healthz:", "readiness.port", "is required"),
        ("http:/healthz:http", "readiness.port", "whole number"),
        ("http:/health z:80", "readiness.path", "no spaces"),
        ("http:/healthz:70000", "readiness.port", "from 1 to 65535"),
        ("tcp:0", "readiness.port", "from 1 to 65535"),
        ("tcp:", "readiness.port", "is required"),
        ("tcp:postgres", "readiness.port", "whole number"),
        ("exec:", "readiness.command", "must not be empty"),
        ("exec:   ", "readiness.command", "must not be empty"),
        ("exec:sh -c 'unclosed", "readiness.command", "cannot be split"),
        ("grpc:1", "readiness.type", "must be http, tcp or exec"),
        ("ping", "readiness", "http:<path>:<port>, tcp:<port> or exec:<command>"),
        ("", "readiness", "http:<path>:<port>"),
    ],
)
def test_health_check_texts_refused(text: str, field: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_health_check(text, "readiness")
    assert reason in caught.value.fields[field][0], caught.value.fields


def test_health_checks_as_mappings_with_timings() -> None:
    checked = spec(
        readiness={
            "type": "exec",
            "command": ["true"],
            "initial_delay": 5,
            "period": 20,
            "timeout": 3,
            "failure_threshold": 6,
        }
    ).readiness
    assert checked == HealthCheck(
        "exec", command=("true",), initial_delay=5, period=20, timeout=3, failure_threshold=6
    )
    assert checked.describe() == "exec:true (after 5s, every 20s, timeout 3s, 6 failures)"
    assert spec(liveness=None).liveness is None
    assert spec(liveness="").liveness is None


@pytest.mark.parametrize(
    ("check", "field", "reason"),
    [
        ({"type": "grpc", "port": 1}, "liveness.type", "must be http, tcp or exec"),
        ({"port": 80}, "liveness.type", "must be http, tcp or exec"),
        ({"type": "http", "port": 80}, "liveness.path", "must start with '/'"),
        ({"type": "tcp", "port": 80, "path": "/x"}, "liveness.path", "only for http"),
        ({"type": "exec", "command": ["true"], "port": 80}, "liveness.port", "only for http and tcp"),
        ({"type": "tcp", "port": 80, "command": ["true"]}, "liveness.command", "only for exec"),
        ({"type": "exec", "command": "true"}, "liveness.command", "list of strings"),
        ({"type": "tcp", "port": 80, "initial_delay": -1}, "liveness.initial_delay", "from 0 to 3600"),
        ({"type": "tcp", "port": 80, "initial_delay": 3601}, "liveness.initial_delay", "from 0 to 3600"),
        ({"type": "tcp", "port": 80, "period": 0}, "liveness.period", "from 1 to 3600"),
        ({"type": "tcp", "port": 80, "period": 3601}, "liveness.period", "from 1 to 3600"),
        ({"type": "tcp", "port": 80, "timeout": 0}, "liveness.timeout", "from 1 to 3600"),
        ({"type": "tcp", "port": 80, "failure_threshold": 0}, "liveness.failure_threshold", "from 1 to 100"),
        (
            {"type": "tcp", "port": 80, "failure_threshold": 101},
            "liveness.failure_threshold",
            "from 1 to 100",
        ),
        ({"type": "tcp", "port": 80, "period": True}, "liveness.period", "whole number"),
        ({"type": "tcp", "port": 80, "grpc": {}}, "liveness.grpc", "unknown field"),
        (8080, "liveness", "or null"),
    ],
)
def test_health_checks_refused(check: Any, field: str, reason: str) -> None:
    fields = refused({"image": "nginx", "liveness": check})
    assert reason in fields[field][0], fields


# --- Labels and annotations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("tier", "web"),
        ("app.kubernetes.io/name", "web"),
        ("example.com/team", ""),
        ("a", "A-b_c.d"),
        ("K" * 63, "v" * 63),
        ("x." * 125 + "io/name", "1"),
    ],
)
def test_labels_by_the_qualified_name_rule(key: str, value: str) -> None:
    assert dict(spec(labels={key: value}).labels) == {key: value}


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("", "v", "non-empty strings"),
        ("k" * 64, "v", "qualified name"),
        ("-tier", "v", "qualified name"),
        ("tier-", "v", "qualified name"),
        ("ti er", "v", "qualified name"),
        ("Example.com/team", "v", "qualified name"),
        ("/team", "v", "qualified name"),
        ("a/b/c", "v", "qualified name"),
        ("example.com/", "v", "qualified name"),
        ("x." * 126 + "io/name", "v", "qualified name"),
        ("tier", "v" * 64, "the value of 'tier' must be at most 63"),
        ("tier", "-web", "the value of 'tier'"),
        ("tier", "web app", "the value of 'tier'"),
        ("tier", 3, "the value of 'tier' must be a string"),
        ("flotilla.dev/app", "web", "reserved for Flotilla"),
        ("flotilla.dev/anything", "web", "reserved for Flotilla"),
        ("app.kubernetes.io/managed-by", "helm", "reserved for Flotilla"),
    ],
)
def test_labels_refused(key: Any, value: Any, reason: str) -> None:
    fields = refused({"image": "nginx", "labels": {"ok": "fine", key: value}})
    assert list(fields) == ["labels"]
    assert any(reason in problem for problem in fields["labels"]), fields


def test_reserved_keys() -> None:
    assert is_reserved_key("flotilla.dev/app-id")
    assert is_reserved_key("app.kubernetes.io/managed-by")
    assert not is_reserved_key("app.kubernetes.io/name")
    assert not is_reserved_key("flotilla.devx/app")


def test_annotations_take_any_string_up_to_256_kib_in_all() -> None:
    note = 'line one\nline two: {"json": true}'
    assert dict(spec(annotations={"example.com/note": note}).annotations) == {"example.com/note": note}
    just_under = {"a": "x" * (256 * 1024 - 1)}
    assert spec(annotations=just_under).annotations["a"] == just_under["a"]
    fields = refused({"image": "nginx", "annotations": {"a": "x" * (128 * 1024), "b": "y" * (128 * 1024)}})
    assert fields == {"annotations": ["must be at most 256 KiB in all (keys and values)"]}


@pytest.mark.parametrize(
    ("annotations", "reason"),
    [
        ({"bad key": "v"}, "qualified name"),
        ({"flotilla.dev/revision": "3"}, "reserved for Flotilla"),
        ({"note": 3}, "must be a string"),
        (["note"], "must be a mapping"),
    ],
)
def test_annotations_refused(annotations: Any, reason: str) -> None:
    fields = refused({"image": "nginx", "annotations": annotations})
    assert reason in fields["annotations"][0], fields


# --- Volumes -----------------------------------------------------------------------------------------


def test_volumes() -> None:
    checked = spec(
        volumes=[
            {"claim": "data", "mount_path": "/data"},
            {
                "claim": "shared.files-1",
                "mount_path": "/srv/files",
                "read_only": True,
                "sub_path": "web/static",
            },
        ]
    )
    assert checked.volumes == (
        VolumeMount("data", "/data"),
        VolumeMount("shared.files-1", "/srv/files", read_only=True, sub_path="web/static"),
    )


@pytest.mark.parametrize(
    ("volume", "field", "reason"),
    [
        ({"mount_path": "/data"}, "volumes[1].claim", "is required"),
        ({"claim": "Data", "mount_path": "/data"}, "volumes[1].claim", "DNS-1123 subdomain"),
        ({"claim": "data_1", "mount_path": "/data"}, "volumes[1].claim", "DNS-1123 subdomain"),
        ({"claim": "d" * 254, "mount_path": "/data"}, "volumes[1].claim", "DNS-1123 subdomain"),
        ({"claim": "data"}, "volumes[1].mount_path", "is required"),
        ({"claim": "data", "mount_path": "data"}, "volumes[1].mount_path", "absolute path"),
        ({"claim": "data", "mount_path": "/da:ta"}, "volumes[1].mount_path", "must not contain ':'"),
        (
            {"claim": "data", "mount_path": "/logs"},
            "volumes[1].mount_path",
            "already the mount path of volumes[0]",
        ),
        (
            {"claim": "data", "mount_path": "/logs/"},
            "volumes[1].mount_path",
            "already the mount path of volumes[0]",
        ),
        (
            {"claim": "data", "mount_path": "/data", "read_only": "yes"},
            "volumes[1].read_only",
            "true or false",
        ),
        (
            {"claim": "data", "mount_path": "/data", "sub_path": "/abs"},
            "volumes[1].sub_path",
            "relative path",
        ),
        (
            {"claim": "data", "mount_path": "/data", "sub_path": "../up"},
            "volumes[1].sub_path",
            "must not contain '..'",
        ),
        ({"claim": "data", "mount_path": "/data", "sub_path": "a/../../b"}, "volumes[1].sub_path", "'..'"),
        ({"claim": "data", "mount_path": "/data", "size": "1Gi"}, "volumes[1].size", "unknown field"),
        ("data:/data", "volumes[1]", "must be a mapping"),
    ],
)
def test_volumes_refused(volume: Any, field: str, reason: str) -> None:
    fields = refused({"image": "nginx", "volumes": [{"claim": "logs", "mount_path": "/logs"}, volume]})
    assert reason in fields[field][0], fields


# --- The whole spec ------------------------------------------------------------------------------------


def test_a_full_spec_round_trips() -> None:
    checked = parse_app_spec(FULL, secret_keys=["TOKEN"])
    stored = checked.to_dict()
    assert stored["env"] == FULL["env"]
    assert stored["ports"] == FULL["ports"]
    assert stored["liveness"]["type"] == "tcp"
    assert stored["labels"] == {"empty": "", "example.com/team": "core", "tier": "web"}
    assert list(stored["labels"]) == sorted(stored["labels"])
    assert stored["secret_keys"] == ["TOKEN"]
    import json

    assert json.loads(json.dumps(stored)) == stored
    assert AppSpec.from_dict(stored) == checked
    assert AppSpec.from_dict(json.loads(json.dumps(stored))) == checked
    assert parse_app_spec(stored) == checked  # what the database keeps is valid input again
    assert hash(checked) == hash(AppSpec.from_dict(stored))


def test_from_dict_fills_defaults_for_older_stored_specs() -> None:
    assert AppSpec.from_dict({"image": "nginx"}) == AppSpec(image="nginx")


def test_defaults() -> None:
    checked = parse_app_spec({"image": "nginx"})
    assert checked == AppSpec(image="nginx")
    assert (checked.replicas, checked.progress_deadline, checked.resources) == (1, 600, Resources())
    assert checked.labels == {} and isinstance(checked.labels, FrozenMap)


def test_a_spec_is_immutable_even_when_built_from_dicts() -> None:
    built = AppSpec(image="nginx", labels={"b": "2", "a": "1"})
    assert isinstance(built.labels, FrozenMap)
    assert list(built.labels) == ["a", "b"]
    assert built == AppSpec(image="nginx", labels={"a": "1", "b": "2"})
    assert hash(built) == hash(AppSpec(image="nginx", labels={"a": "1", "b": "2"}))


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_app_spec(
            {
                "image": "Nginx:1.27",
                "replicas": -1,
                "env": [{"name": "1ABC", "value": "x"}],
                "ports": [0],
                "resources": {"cpu_request": "12MB"},
                "readiness": "grpc:1",
                "labels": {"flotilla.dev/app": "x"},
                "volumes": [{"claim": "data", "mount_path": "rel"}],
                "progress_deadline": 1,
                "replica": 3,
            }
        )
    assert set(caught.value.fields) == {
        "image",
        "replicas",
        "env[0].name",
        "ports[0].port",
        "resources.cpu_request",
        "readiness.type",
        "labels",
        "volumes[0].mount_path",
        "progress_deadline",
        "replica",
    }
    assert caught.value.message.startswith("10 fields are not valid: image: ")
    assert caught.value.fields["replica"] == ["unknown field"]


def test_one_bad_field_makes_a_short_message() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_app_spec({"image": "nginx", "replicas": 5000})
    assert caught.value.message == "replicas: must be from 0 to 1000"


def test_request_keys_are_left_to_the_caller() -> None:
    body = {
        "cluster": 3,
        "name": "web",
        "namespace": "default",
        "kind": "deployment",
        "image": "nginx",
        "secrets": {"T": "v"},
    }
    assert parse_app_spec(body) == AppSpec(image="nginx")


def test_restarted_at_is_an_iso_timestamp() -> None:
    assert spec(restarted_at="2026-12-02T09:00:00+00:00").restarted_at == "2026-12-02T09:00:00+00:00"
    assert refused({"image": "nginx", "restarted_at": "yesterday"}) == {
        "restarted_at": ["must be an ISO 8601 date and time"]
    }


@pytest.mark.parametrize("data", [["image", "nginx"], "nginx", None])
def test_a_spec_must_be_a_mapping(data: Any) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_app_spec(data)
    assert caught.value.fields == {"spec": ["must be a mapping"]}


# --- Partial updates ---------------------------------------------------------------------------------


def test_a_partial_update_changes_only_the_keys_given() -> None:
    base = parse_app_spec(FULL, secret_keys=["TOKEN"])
    updated = parse_app_spec({"image": "registry.example.com:5000/team/web:v3", "replicas": 5}, base=base)
    assert updated.image.endswith(":v3") and updated.replicas == 5
    unchanged = {key: value for key, value in updated.to_dict().items() if key not in ("image", "replicas")}
    assert unchanged == {
        key: value for key, value in base.to_dict().items() if key not in ("image", "replicas")
    }
    assert parse_app_spec({}, base=base) == base


def test_null_clears_optional_keys() -> None:
    base = parse_app_spec(FULL)
    cleared = parse_app_spec(
        {
            "readiness": None,
            "liveness": None,
            "env": None,
            "ports": None,
            "labels": None,
            "annotations": None,
            "volumes": None,
            "command": None,
            "args": None,
            "resources": None,
        },
        base=base,
    )
    assert cleared == AppSpec(image=base.image, replicas=3, progress_deadline=300)


@pytest.mark.parametrize("key", ["image", "replicas", "progress_deadline"])
def test_null_does_not_clear_a_required_value(key: str) -> None:
    assert key in refused({key: None}, base=spec())


def test_resources_update_only_the_quantities_given() -> None:
    base = parse_app_spec(FULL)
    updated = parse_app_spec({"resources": {"cpu_limit": "2", "memory_request": None}}, base=base)
    assert updated.resources == Resources(
        cpu_request="250m", cpu_limit="2", memory_request="", memory_limit="1Gi"
    )
    # The merged values are checked together: a lower limit under the base's request is refused.
    fields = refused({"resources": {"memory_limit": "64Mi"}}, base=base)
    assert fields == {"resources.memory_request": ["must not be more than memory_limit (64Mi)"]}


def test_an_update_is_checked_against_the_secret_names() -> None:
    base = parse_app_spec({"image": "nginx", "env": {"TOKEN": "plain"}})
    assert refused({"replicas": 2}, base=base, secret_keys=["TOKEN"]) == {
        "env[0].name": ["TOKEN is also the name of a secret variable"]
    }


def test_an_update_of_a_bad_value_names_it() -> None:
    assert refused({"image": "nginx:", "ports": [70000]}, base=spec()).keys() == {"image", "ports[0].port"}


# --- Change lines -----------------------------------------------------------------------------------


def test_changes_from_an_older_spec() -> None:
    older = parse_app_spec(
        {
            "image": "nginx:1.25",
            "replicas": 2,
            "env": {"FOO": "1", "KEEP": "same", "GONE": "x", "LOG": "info"},
            "ports": [80, {"port": 443, "name": "https"}],
            "resources": {"cpu_request": "250m"},
            "readiness": "http:/healthz:80",
            "labels": {"tier": "web", "old": "x"},
            "annotations": {"note": "a"},
            "volumes": [{"claim": "data", "mount_path": "/data"}],
        },
        secret_keys=["OLD_TOKEN", "KEPT"],
    )
    newer = parse_app_spec(
        {
            "image": "nginx:1.27",
            "replicas": 3,
            "command": ["nginx", "-g", "daemon off;"],
            "env": {"FOO": "1", "KEEP": "same", "LOG": "debug", "NEW": "y"},
            "ports": [80, {"port": 443, "name": "tls"}, {"port": 53, "protocol": "UDP", "name": "dns"}],
            "resources": {"cpu_request": "500m", "memory_limit": "1Gi"},
            "readiness": {"type": "tcp", "port": 80, "period": 5},
            "liveness": "exec:cat /tmp/ok",
            "labels": {"tier": "api", "new": "y"},
            "annotations": {"note": "b", "other": "c"},
            "volumes": [{"claim": "logs", "mount_path": "/logs"}],
            "progress_deadline": 300,
            "restarted_at": "2026-12-02T09:00:00+00:00",
        },
        secret_keys=["KEPT", "TOKEN"],
    )
    assert newer.changes_from(older) == [
        "image: nginx:1.25 → nginx:1.27",
        "replicas: 2 → 3",
        "command: (none) → nginx -g 'daemon off;'",
        "env GONE removed",
        "env LOG changed",
        "env NEW added",
        "secret TOKEN added",
        "secret OLD_TOKEN removed",
        "port 53/UDP (dns) added",
        "port 443/TCP name: https → tls",
        "cpu request: 250m → 500m",
        "memory limit: (none) → 1Gi",
        "readiness: http:/healthz:80 → tcp:80 (after 0s, every 5s, timeout 1s, 3 failures)",
        "liveness: (none) → exec:cat /tmp/ok",
        "label new=y added",
        "label old removed",
        "label tier: web → api",
        "annotation note changed",
        "annotation other added",
        "volume data at /data removed",
        "volume logs at /logs added",
        "progress deadline: 600s → 300s",
        "restarted at 2026-12-02T09:00:00+00:00",
    ]
    assert older.changes_from(older) == []


def test_change_lines_never_carry_a_variable_value() -> None:
    older = spec(env={"DB_PASSWORD": "hunter2-old"}, annotations={"example.com/token": "abc-old"})
    newer = spec(env={"DB_PASSWORD": "hunter2-new"}, annotations={"example.com/token": "abc-new"})
    lines = newer.changes_from(older)
    assert lines == ["env DB_PASSWORD changed", "annotation example.com/token changed"]
    assert not any("hunter2" in line or "abc-" in line for line in lines)


def test_a_reordered_env_is_a_change() -> None:
    assert spec(env={"B": "1", "A": "1"}).changes_from(spec(env={"A": "1", "B": "1"})) == ["env reordered"]
