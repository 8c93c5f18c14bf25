"""Portal forms of snapshots, restores and storage locations, in the text a person types.

The forms only turn that text into the services' shape (a selection dict, restore options, a
location's fields); every value is checked by the services, which name a bad field in the API's
spelling (`selection.include_namespaces[1]`, `options.namespace_map.shop`, `credentials`).
`add_service_errors` places such a name on the input that holds it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from django import forms

from clusters.models import Cluster
from snapshots.choices import ExistingPolicy, StorageKind
from snapshots.models import StorageLocation

# "selection.include_namespaces[1]", "options.namespace_map.shop", "options.existing", "name"
_SERVICE_FIELD = re.compile(
    r"^(?:(?:selection|options)\.)?(?P<head>[a-z_]+)(?:\[(?P<index>\d+)\])?(?:\.(?P<rest>.+))?$"
)
SELECTION_FIELDS = ("include_namespaces", "exclude_namespaces", "include_kinds", "exclude_kinds")


def _words(text: str) -> list[str]:
    """ "shop, team-*  kube-*" as ["shop", "team-*", "kube-*"] (commas, spaces or lines)."""
    return [word for word in re.split(r"[,\s]+", text) if word]


def _map_lines(text: str) -> dict[str, str]:
    """ "a=b" lines as {"a": "b"}; blank lines and # comments are skipped."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            key, _, value = stripped.partition("=")
            found[key.strip()] = value.strip()
    return found


def _map_lines_error(text: str, shape: str = "FROM=TO") -> None:
    bad = [
        str(number)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.strip().startswith("#") and "=" not in line
    ]
    if bad:
        raise forms.ValidationError(f"Line {', '.join(bad)}: write one {shape} per line.")


def _list_field(label: str, placeholder: str, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=4000,
        help_text=help_text,
        widget=forms.TextInput(attrs={"placeholder": placeholder, "spellcheck": "false"}),
    )


class ServiceErrors(forms.Form):
    """A form that shows the services' field errors on the inputs that hold them."""

    def _entry(self, name: str, index: int) -> str:
        words = _words(str(self.data.get(self.add_prefix(name), "")))
        return f"{words[index]!r}" if index < len(words) else f"Entry {index + 1}"

    def field_for(self, service_field: str) -> tuple[str | None, str]:
        """The form field showing a service field's error, and the words put before the reason."""
        match = _SERVICE_FIELD.match(service_field)
        if match is None or match["head"] not in self.fields:
            return None, ""
        head, index = match["head"], match["index"]
        if index is not None:
            return head, f"{self._entry(head, int(index))}: "
        # A map's key ("options.namespace_map.shop") is already in the service's reason.
        return head, ""

    def add_service_errors(self, fields: Mapping[str, Sequence[str]]) -> bool:
        """Place a service's field errors on the inputs; False when one of them has no input (the
        caller then shows the error's message, which names it)."""
        placed_all = bool(fields)
        for service_field, reasons in fields.items():
            target, lead = self.field_for(service_field)
            if target is None:
                placed_all = False
                continue
            for reason in reasons:
                # The reason may already quote the entry ("'BAD!' is not a namespace name").
                shown = reason if lead and lead[:-2] in reason else f"{lead}{reason}"
                self.add_error(target, shown)
        return placed_all


class SelectionFields(ServiceErrors):
    """What a snapshot and a restore share: which namespaces, kinds and labels they take."""

    include_namespaces = _list_field(
        "Namespaces", "shop, team-*", "Comma-separated, globs allowed; empty: every namespace."
    )
    exclude_namespaces = _list_field("Except namespaces", "kube-*")
    include_kinds = _list_field(
        "Kinds", "ConfigMap, apps/Deployment", "Kind, group/Kind or group/version/Kind; empty: every kind."
    )
    exclude_kinds = _list_field("Except kinds", "Event")
    label_selector = forms.CharField(
        label="Label selector",
        required=False,
        max_length=1000,
        widget=forms.TextInput(attrs={"placeholder": "app=web,tier!=db", "spellcheck": "false"}),
    )
    cluster_scoped = forms.BooleanField(
        label="Cluster-scoped objects",
        required=False,
        initial=True,
        help_text="CRDs, ClusterRoles, StorageClasses…",
    )

    def selection(self) -> dict[str, Any]:
        """The selection in the services' shape (an empty list means every one)."""
        cleaned = self.cleaned_data
        chosen: dict[str, Any] = {name: _words(cleaned.get(name) or "") for name in SELECTION_FIELDS}
        chosen["label_selector"] = (cleaned.get("label_selector") or "").strip()
        chosen["cluster_scoped"] = bool(cleaned.get("cluster_scoped"))
        return chosen


class SnapshotForm(SelectionFields):
    """A snapshot of a cluster: its name, where it goes, and what it takes."""

    name = forms.CharField(
        required=False,
        max_length=100,
        help_text="Empty: the cluster's name and the time.",
        widget=forms.TextInput(attrs={"placeholder": "before-upgrade", "spellcheck": "false"}),
    )
    location = forms.ChoiceField(label="Storage location", choices=(), required=False)
    # Repeating a submission (a double click, a reload) replays the first request.
    request_id = forms.CharField(widget=forms.HiddenInput, required=False, max_length=32)

    field_order = ["name", "location"]

    def __init__(self, *args: Any, locations: Sequence[StorageLocation] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        location_field = self.fields["location"]
        assert isinstance(location_field, forms.ChoiceField)
        location_field.choices = [
            (str(loc.pk), f"{loc.name} ({loc.get_kind_display()})") for loc in locations
        ] or [("", "local (the org's own directory, made on first use)")]
        default = next((loc for loc in locations if loc.is_default), None)
        if default is not None and not self.is_bound:
            self.initial.setdefault("location", str(default.pk))


class RestoreForm(SelectionFields):
    """A restore (its preview first): the target cluster, the mappings, and existing objects' fate."""

    target = forms.ChoiceField(label="Target cluster", choices=())
    namespace_map = forms.CharField(
        label="Namespace map",
        required=False,
        max_length=20_000,
        help_text="One FROM=TO per line: objects of FROM are restored into TO.",
        widget=forms.Textarea(attrs={"rows": "3", "placeholder": "shop=shop-copy", "spellcheck": "false"}),
    )
    storage_class_map = forms.CharField(
        label="Storage-class map",
        required=False,
        max_length=20_000,
        help_text="One FROM=TO per line, for PersistentVolumeClaims and StatefulSets' claim templates.",
        widget=forms.Textarea(attrs={"rows": "2", "placeholder": "fast=standard", "spellcheck": "false"}),
    )
    existing = forms.ChoiceField(
        label="Objects that already exist", choices=ExistingPolicy.choices, initial=ExistingPolicy.SKIP
    )
    request_id = forms.CharField(widget=forms.HiddenInput, required=False, max_length=32)

    field_order = ["target", "namespace_map", "storage_class_map", "existing"]

    def __init__(self, *args: Any, clusters: Sequence[Cluster] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        target_field = self.fields["target"]
        assert isinstance(target_field, forms.ChoiceField)
        target_field.choices = [(str(c.pk), c.name) for c in clusters]

    def clean_namespace_map(self) -> str:
        text: str = self.cleaned_data["namespace_map"]
        _map_lines_error(text)
        return text

    def clean_storage_class_map(self) -> str:
        text: str = self.cleaned_data["storage_class_map"]
        _map_lines_error(text)
        return text

    def options(self) -> dict[str, Any]:
        """The restore options in the services' shape."""
        return {
            **self.selection(),
            "namespace_map": _map_lines(self.cleaned_data.get("namespace_map") or ""),
            "storage_class_map": _map_lines(self.cleaned_data.get("storage_class_map") or ""),
            "existing": self.cleaned_data["existing"],
        }


class LocationForm(ServiceErrors):
    """A new storage location: a local one needs nothing; S3 and other drivers say where and how."""

    name = forms.CharField(
        max_length=63,
        help_text="Lowercase letters, digits and '-'.",
        widget=forms.TextInput(attrs={"spellcheck": "false"}),
    )
    kind = forms.ChoiceField(choices=StorageKind.choices, initial=StorageKind.LOCAL)
    driver = forms.CharField(
        label="Driver",
        required=False,
        max_length=40,
        help_text="A libcloud storage provider (other drivers).",
    )
    bucket = forms.CharField(required=False, max_length=255)
    endpoint = forms.CharField(
        label="Endpoint URL",
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"spellcheck": "false"}),
    )
    region = forms.CharField(required=False, max_length=63)
    # Not "prefix": a form's own attribute of that name prefixes its inputs.
    bucket_prefix = forms.CharField(
        label="Prefix", required=False, max_length=200, help_text="A folder of the bucket; empty: its root."
    )
    key = forms.CharField(
        label="Access key",
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    secret = forms.CharField(
        label="Secret key",
        required=False,
        max_length=2000,
        strip=False,
        help_text="Kept encrypted, never shown again.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )
    options = forms.CharField(
        label="Driver options",
        required=False,
        max_length=4000,
        help_text="One NAME=VALUE per line (not secret).",
        widget=forms.Textarea(attrs={"rows": "2", "spellcheck": "false"}),
    )
    is_default = forms.BooleanField(label="Make it the default", required=False)

    def clean_options(self) -> str:
        text: str = self.cleaned_data["options"]
        _map_lines_error(text, "NAME=VALUE")
        return text

    def field_for(self, service_field: str) -> tuple[str | None, str]:
        """`credentials` is the access key and secret the form asks for."""
        if service_field == "credentials":
            return "secret", ""
        if service_field == "prefix":
            return "bucket_prefix", ""
        if service_field == "key":
            # The storage's "key" is an object's key (a probe that went missing), not the access key.
            return None, ""
        if service_field.startswith("options."):
            return "options", f"{service_field.partition('.')[2]}: "
        return super().field_for(service_field)

    def location_data(self) -> dict[str, Any]:
        """The location in the services' shape; credentials only when some were typed."""
        cleaned = self.cleaned_data
        data: dict[str, Any] = {
            name: cleaned.get(name) or ""
            for name in ("name", "kind", "driver", "bucket", "endpoint", "region")
        }
        data["prefix"] = (cleaned.get("bucket_prefix") or "").strip()
        data["options"] = _map_lines(cleaned.get("options") or "")
        data["is_default"] = bool(cleaned.get("is_default"))
        key, secret = (cleaned.get("key") or "").strip(), cleaned.get("secret") or ""
        if key or secret:
            data["credentials"] = {"key": key, "secret": secret}
        return data
