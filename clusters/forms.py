"""Portal forms of the clusters app: shape checks only; the services decide what is allowed.

Catalogue choices (regions, sizes, versions, credential fields) are read from the provider by
the view and handed to the forms, so a form never calls a provider itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.http import QueryDict

from clusters.choices import ProviderKind
from clusters.kube import MAX_KUBECONFIG_BYTES
from clusters.models import ProviderAccount
from clusters.providers.base import CredentialField, Region, Size
from clusters.services import specs
from clusters.services.specs import MAX_POOLS
from orgs.exceptions import ValidationFailed

# Credential fields are prefixed so that a provider's field can never clash with name/kind.
CREDENTIAL_PREFIX = "cred_"
Choices = list[tuple[str, str]]


def _field_error(exc: ValidationFailed) -> forms.ValidationError:
    # The service's reason, shown under the field it names.
    return forms.ValidationError([reason for reasons in exc.fields.values() for reason in reasons])


def format_labels(labels: dict[str, str]) -> str:
    """A pool's labels as the form writes them."""
    return ", ".join(f"{k}={v}" for k, v in labels.items())


def format_taints(taints: Sequence[dict[str, str]]) -> str:
    """A pool's taints as the form writes them."""
    return ", ".join(
        f"{t['key']}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect', 'NoSchedule')}"
        for t in taints
    )


class PoolForm(forms.Form):
    """One node pool: name, machine size, node count, labels and taints."""

    name = forms.CharField(label="Pool name", max_length=30, required=True)
    size = forms.ChoiceField(label="Machine size", choices=())
    count = forms.IntegerField(label="Nodes", min_value=0, max_value=100, initial=1)
    labels = forms.CharField(
        label="Labels",
        required=False,
        max_length=2000,
        help_text="key=value, separated by commas or semicolons",
        widget=forms.TextInput(attrs={"placeholder": "tier=web, team=shop"}),
    )
    taints = forms.CharField(
        label="Taints",
        required=False,
        max_length=2000,
        help_text="key[=value][:Effect] (NoSchedule when omitted), separated by commas or semicolons",
        widget=forms.TextInput(attrs={"placeholder": "gpu=true:NoSchedule"}),
    )

    def __init__(self, *args: Any, sizes: Sequence[Size] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        size_field = self.fields["size"]
        assert isinstance(size_field, forms.ChoiceField)
        size_field.choices = [(s.id, s.name) for s in sizes]
        if sizes:
            # An untouched extra row (size left at its first option) counts as empty.
            size_field.initial = sizes[0].id

    def has_changed(self) -> bool:
        # A pool row is there when it has a name; rows left without one are ignored.
        if self.empty_permitted:
            return bool(str(self.data.get(self.add_prefix("name"), "")).strip())
        return super().has_changed()

    def clean_labels(self) -> dict[str, str]:
        try:
            return specs.parse_labels(self.cleaned_data.get("labels") or "", "labels")
        except ValidationFailed as exc:
            raise _field_error(exc) from exc

    def clean_taints(self) -> list[dict[str, str]]:
        try:
            return specs.parse_taints(self.cleaned_data.get("taints") or "", "taints")
        except ValidationFailed as exc:
            raise _field_error(exc) from exc

    def pool(self) -> dict[str, Any]:
        """The pool as the services take it."""
        data = self.cleaned_data
        return {
            "name": data["name"].strip(),
            "size": data["size"],
            "count": data["count"],
            "labels": data["labels"],
            "taints": data["taints"],
        }


PoolFormSet = forms.formset_factory(
    PoolForm,
    extra=0,
    min_num=1,
    validate_min=True,
    max_num=MAX_POOLS,
    validate_max=True,
    absolute_max=MAX_POOLS,
)


# The create form's value for the local provider before its account exists (made on submit).
LOCAL_ON_FIRST_USE = "local"


def account_choice(account: ProviderAccount) -> str:
    """The provider field's value for an account: its id, or LOCAL_ON_FIRST_USE if not yet saved."""
    return str(account.pk) if account.pk is not None else LOCAL_ON_FIRST_USE


class ClusterForm(forms.Form):
    """A new cluster: name, provider account, region and Kubernetes version (pools alongside)."""

    name = forms.CharField(
        max_length=40, help_text="Lowercase letters, digits and hyphens, starting with a letter."
    )
    provider = forms.ChoiceField(label="Provider account", choices=())
    region = forms.ChoiceField(choices=(), required=False)
    version = forms.ChoiceField(label="Kubernetes version", choices=())
    # Repeating a submission (a double click, a reload) replays the first request.
    request_id = forms.CharField(widget=forms.HiddenInput, required=False, max_length=32)

    def __init__(
        self,
        *args: Any,
        accounts: Sequence[ProviderAccount] = (),
        regions: Sequence[Region] = (),
        versions: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._set_choices(
            "provider", [(account_choice(a), f"{a.name} · {ProviderKind(a.kind).label}") for a in accounts]
        )
        self._set_choices("region", [(r.id, f"{r.name} ({r.id})" if r.id else r.name) for r in regions])
        self._set_choices("version", [(v, v) for v in versions])

    def _set_choices(self, name: str, choices: Choices) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices


class ImportForm(forms.Form):
    """An existing cluster, by kubeconfig (pasted or uploaded)."""

    name = forms.CharField(
        max_length=40, help_text="How Flotilla names it: lowercase letters, digits and hyphens."
    )
    kubeconfig = forms.CharField(
        label="Kubeconfig",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "autocomplete": "off"}),
        help_text="Paste it here, or upload the file below. Only the chosen context is kept, encrypted.",
    )
    kubeconfig_file = forms.FileField(
        label="Or upload the file", required=False, help_text=f"At most {MAX_KUBECONFIG_BYTES // 1024} KiB."
    )
    context = forms.CharField(
        max_length=253, required=False, help_text="Optional: default is the file's current-context."
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("kubeconfig_file")
        text = data.get("kubeconfig") or ""
        if upload is not None:
            if upload.size is not None and upload.size > MAX_KUBECONFIG_BYTES:
                self.add_error(
                    "kubeconfig_file", f"The file is larger than {MAX_KUBECONFIG_BYTES // 1024} KiB."
                )
                return data
            try:
                text = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                self.add_error("kubeconfig_file", "The file is not text (UTF-8); upload a kubeconfig.")
                return data
        if not text.strip():
            self.add_error("kubeconfig", "Paste a kubeconfig or choose a file.")
        data["kubeconfig_text"] = text
        return data


class ProviderForm(forms.Form):
    """Connect a provider account; the chosen kind's credential fields are added by the view."""

    name = forms.CharField(max_length=60, help_text="Lowercase letters, digits and hyphens.")
    kind = forms.ChoiceField(label="Provider", choices=())

    def __init__(
        self,
        *args: Any,
        kinds: Sequence[tuple[str, str]] = (),
        credential_fields: Sequence[CredentialField] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        kind_field = self.fields["kind"]
        assert isinstance(kind_field, forms.ChoiceField)
        kind_field.choices = list(kinds)
        self._secret_names: set[str] = set()
        for spec in credential_fields:
            self.fields[CREDENTIAL_PREFIX + spec.name] = _credential_field(spec)
            if spec.secret:
                self._secret_names.add(CREDENTIAL_PREFIX + spec.name)

    def forget_secrets(self) -> None:
        """Drop the secret values so that a page shown again never carries them back."""
        if self.is_bound:
            data = self.data.copy() if isinstance(self.data, QueryDict) else dict(self.data)
            for name in self._secret_names:
                data.pop(self.add_prefix(name), None)
            self.data = data

    def credential_names(self) -> list[str]:
        """The names of the credential fields on this form."""
        return [name for name in self.fields if name.startswith(CREDENTIAL_PREFIX)]

    def credential_fields(self) -> list[forms.BoundField]:
        """The credential fields, for the htmx partial."""
        return [self[name] for name in self.credential_names()]

    def credential_values(self) -> dict[str, str]:
        """The filled-in credential fields, by the provider's own field names."""
        return {
            name.removeprefix(CREDENTIAL_PREFIX): value
            for name in self.credential_names()
            if (value := str(self.cleaned_data.get(name) or "").strip())
        }

    def field_for(self, provider_field: str) -> str | None:
        """The form field showing a provider field's error (None: the form's own errors)."""
        if provider_field in ("name", "kind"):
            return provider_field
        name = CREDENTIAL_PREFIX + provider_field
        return name if name in self.fields else None


def _credential_field(spec: CredentialField) -> forms.CharField:
    widget: forms.Widget
    if spec.multiline:
        # Secret text areas are emptied before a form is shown again (ProviderForm.forget_secrets).
        widget = forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "autocomplete": "off"})
    elif spec.secret:
        widget = forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False)
    else:
        widget = forms.TextInput()
    return forms.CharField(
        label=spec.label,
        required=spec.required,
        help_text=spec.help,
        widget=widget,
        strip=not spec.multiline,
        max_length=20000,
    )
