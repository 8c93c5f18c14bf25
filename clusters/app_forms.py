"""Portal forms of apps: the deploy form and the edit form, in the text a person types.

The forms only turn that text into the shape the services take (the API's JSON shape: env as
a list of {name, value}, ports as {port, protocol, name}, health checks as "http:/healthz:8080");
every value is then checked by the services, which name the field of a bad one in the API's
spelling (`env[2].name`, `ports[0].port`, `resources.cpu_request`). `field_for` places such a
name on the input that holds it, with the line it came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from django import forms
from django.http import QueryDict

from clusters.models import Cluster
from clusters.workloads.spec import AppSpec

Choices = list[tuple[str, str]]
RESOURCE_FIELDS = ("cpu_request", "cpu_limit", "memory_request", "memory_limit")
# The spec keys the edit form can change (the form field of each is named after it).
SPEC_FIELDS = (
    "image",
    "replicas",
    "ports",
    "env",
    *RESOURCE_FIELDS,
    "readiness",
    "liveness",
    "progress_deadline",
)
# "env[2].name", "ports[0]", "resources.cpu_request", "secrets.TOKEN", "readiness.path"
_SERVICE_FIELD = re.compile(r"^(?P<head>[a-z_]+)(?:\[(?P<index>\d+)\])?(?:\.(?P<rest>.+))?$")
_PORT = re.compile(r"^(?:(?P<name>[^=\s]+)\s*=\s*)?(?P<port>[^/\s]+)(?:\s*/\s*(?P<protocol>\S+))?$")


def _text_area(rows: int, placeholder: str, *, secret: bool = False) -> forms.Textarea:
    attrs = {"rows": str(rows), "spellcheck": "false", "placeholder": placeholder}
    if secret:
        attrs["autocomplete"] = "off"
    return forms.Textarea(attrs=attrs)


def _pairs(text: str) -> list[tuple[int, str, str]]:
    """KEY=VALUE lines as (line number, key, value); blank lines and # comments are skipped."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, _, value = line.partition("=")
        found.append((number, key.strip(), value))
    return found


def _pair_lines_error(text: str) -> None:
    bad = [
        str(number)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and "=" not in line
    ]
    if bad:
        raise forms.ValidationError(f"Line {', '.join(bad)}: write one KEY=VALUE per line.")


def _port_items(text: str) -> list[dict[str, Any]]:
    """ "80, 53/udp, http=8080" as the service's port objects (numbers it cannot read are left as
    text, for the service to name)."""
    items: list[dict[str, Any]] = []
    for part in (p.strip() for p in re.split(r"[,;]", text) if p.strip()):
        match = _PORT.match(part)
        if match is None:
            items.append({"port": part})
            continue
        port: Any = match["port"]
        item: dict[str, Any] = {"port": int(port) if port.isdigit() else port}
        if match["protocol"]:
            item["protocol"] = match["protocol"].upper()
        if match["name"]:
            item["name"] = match["name"]
        items.append(item)
    return items


def format_ports(ports: Sequence[Mapping[str, Any]]) -> str:
    """Ports as the form writes them."""
    shown = []
    for port in ports:
        text = str(port.get("port", ""))
        if port.get("protocol", "TCP") != "TCP":
            text += f"/{str(port['protocol']).lower()}"
        if port.get("name"):
            text = f"{port['name']}={text}"
        shown.append(text)
    return ", ".join(shown)


def format_env(env: Sequence[Mapping[str, Any]]) -> str:
    """Plain variables as the form writes them."""
    return "\n".join(f"{var['name']}={var['value']}" for var in env)


class AppFields(forms.Form):
    """What deploying and editing share: image, replicas, ports, env, resources, health checks."""

    image = forms.CharField(max_length=2048, widget=forms.TextInput(attrs={"placeholder": "nginx:1.27"}))
    replicas = forms.IntegerField(min_value=0, max_value=1000, initial=1)
    ports = forms.CharField(
        required=False,
        max_length=2000,
        help_text='Container ports, comma-separated: "80, 53/udp, http=8080" (a Service is made for them).',
        widget=forms.TextInput(attrs={"placeholder": "80, 53/udp, http=8080"}),
    )
    env = forms.CharField(
        label="Environment",
        required=False,
        max_length=600_000,
        strip=False,
        help_text="One KEY=VALUE per line.",
        widget=_text_area(4, "LOG_LEVEL=info"),
    )
    cpu_request = forms.CharField(label="CPU request", required=False, max_length=40)
    cpu_limit = forms.CharField(label="CPU limit", required=False, max_length=40)
    memory_request = forms.CharField(label="Memory request", required=False, max_length=40)
    memory_limit = forms.CharField(label="Memory limit", required=False, max_length=40)
    readiness = forms.CharField(
        label="Readiness check",
        required=False,
        max_length=2000,
        help_text='"http:/healthz:8080", "tcp:5432" or "exec:cat /tmp/ready"; empty: none.',
    )
    liveness = forms.CharField(label="Liveness check", required=False, max_length=2000)
    progress_deadline = forms.IntegerField(
        label="Progress deadline (s)",
        min_value=10,
        max_value=3600,
        initial=600,
        help_text="A rollout that makes no progress for this long fails.",
    )
    secrets = forms.CharField(
        label="Secret variables",
        required=False,
        max_length=600_000,
        strip=False,
        help_text="One KEY=VALUE per line: kept encrypted, put in a Kubernetes Secret, never shown again.",
        widget=_text_area(3, "API_TOKEN=…", secret=True),
    )

    def clean_env(self) -> str:
        text: str = self.cleaned_data["env"]
        _pair_lines_error(text)
        return text

    def clean_secrets(self) -> str:
        text: str = self.cleaned_data["secrets"]
        _pair_lines_error(text)
        return text

    def forget_secrets(self) -> None:
        """Drop the secret values so that a page shown again never carries them back."""
        if self.is_bound:
            data = self.data.copy() if isinstance(self.data, QueryDict) else dict(self.data)
            data.pop(self.add_prefix("secrets"), None)
            self.data = data

    def _spec_value(self, name: str) -> Any:
        value = self.cleaned_data[name]
        if name == "ports":
            return _port_items(value)
        if name == "env":
            return [{"name": key, "value": text} for _, key, text in _pairs(value)]
        if name in ("readiness", "liveness"):
            return value.strip() or None
        if name in RESOURCE_FIELDS:
            return value.strip()
        return value

    def spec(self, names: Sequence[str] = SPEC_FIELDS) -> dict[str, Any]:
        """The spec keys of `names` in the services' shape (resources grouped as they expect)."""
        given: dict[str, Any] = {}
        for name in names:
            if name in RESOURCE_FIELDS:
                given.setdefault("resources", {})[name] = self._spec_value(name)
            else:
                given[name] = self._spec_value(name)
        return given

    def secret_values(self) -> dict[str, str]:
        """The secret variables given, by name."""
        return {key: value for _, key, value in _pairs(self.cleaned_data.get("secrets") or "")}

    def _line_of(self, name: str, index: int) -> str:
        """ "line 3 (FOO)": where the index-th entry of a text field was written."""
        if name in ("env", "secrets"):
            lines = _pairs(str(self.data.get(self.add_prefix(name), "")))
            if index < len(lines):
                return f"Line {lines[index][0]} ({lines[index][1] or 'no name'})"
        if name == "ports":
            return f"Port {index + 1}"
        return f"Entry {index + 1}"

    def field_for(self, service_field: str) -> tuple[str | None, str]:
        """The form field showing a service field's error, and the words put before the reason."""
        match = _SERVICE_FIELD.match(service_field)
        if match is None:
            return None, ""
        head, index, rest = match["head"], match["index"], match["rest"]
        if head == "resources" and rest in RESOURCE_FIELDS:
            return rest, ""
        if head == "secrets" and rest:
            return "secrets", f"{rest}: "
        if head in self.fields:
            if index is not None:
                return head, f"{self._line_of(head, int(index))}{' ' + rest if rest else ''}: "
            return head, f"{rest}: " if rest and head not in ("readiness", "liveness") else ""
        return None, ""

    def add_service_errors(self, fields: Mapping[str, Sequence[str]]) -> bool:
        """Place a service's field errors on the inputs; False when none of them could be placed."""
        placed = False
        for service_field, reasons in fields.items():
            target, lead = self.field_for(service_field)
            for reason in reasons:
                self.add_error(target, f"{lead}{reason}" if target else f"{service_field}: {reason}")
                placed = True
        return placed


class DeployForm(AppFields):
    """A new app: where it runs (cluster, namespace), its name, and what it runs."""

    cluster = forms.ChoiceField(choices=())
    namespace = forms.CharField(max_length=63, initial="default")
    name = forms.CharField(
        max_length=63, help_text="Lowercase letters, digits and '-': it names the Deployment and its Service."
    )
    # Repeating a submission (a double click, a reload) replays the first request.
    request_id = forms.CharField(widget=forms.HiddenInput, required=False, max_length=32)

    field_order = ["cluster", "namespace", "name", "image", "replicas"]

    def __init__(self, *args: Any, clusters: Sequence[Cluster] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cluster_field = self.fields["cluster"]
        assert isinstance(cluster_field, forms.ChoiceField)
        cluster_field.choices = [(str(c.pk), c.name) for c in clusters]


class EditForm(AppFields):
    """A change of an app: only the inputs the page sent are changed (an image-only form sends one)."""

    remove_secrets = forms.CharField(
        label="Remove secret variables",
        required=False,
        max_length=2000,
        help_text="Names, comma-separated.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            field.required = False
            if name in ("replicas", "progress_deadline"):
                # Present but left empty means "unchanged", like an input that was not sent.
                field.initial = None

    @classmethod
    def initial_from(cls, spec: AppSpec) -> dict[str, Any]:
        """The form's values for an app's current spec (secret values never)."""
        data = spec.to_dict()
        resources = data.get("resources") or {}
        return {
            "image": spec.image,
            "replicas": spec.replicas,
            "ports": format_ports(data.get("ports") or []),
            "env": format_env(data.get("env") or []),
            **{name: resources.get(name, "") for name in RESOURCE_FIELDS},
            "readiness": spec.readiness.to_text() if spec.readiness else "",
            "liveness": spec.liveness.to_text() if spec.liveness else "",
            "progress_deadline": spec.progress_deadline,
        }

    def sent(self) -> list[str]:
        """The spec inputs this request carried (the others stay as they are)."""
        names = []
        for name in SPEC_FIELDS:
            if self.add_prefix(name) not in self.data:
                continue
            if name in ("replicas", "progress_deadline", "image") and self.cleaned_data.get(name) in (
                None,
                "",
            ):
                continue
            names.append(name)
        return names

    def removed_secrets(self) -> list[str]:
        """The secret variables to remove, by name."""
        return [n for n in re.split(r"[,\s]+", self.cleaned_data.get("remove_secrets") or "") if n]
