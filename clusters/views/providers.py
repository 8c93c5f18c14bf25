"""Provider accounts: list, connect (credentials checked by the service), delete, refresh catalogue."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clusters import selectors
from clusters.choices import ProviderKind
from clusters.forms import (
    ProviderForm,
)
from clusters.models import ProviderAccount
from clusters.permissions import Action, can
from clusters.providers.registry import capabilities_by_kind, driver_classes
from clusters.services import providers as provider_services
from clusters.views.common import (
    actor_of,
    not_found_is_404,
    org_redirect,
)
from orgs.exceptions import FlotillaError
from orgs.feedback import report_error


def _provider_kinds() -> list[tuple[str, str]]:
    # Existing clusters get their account when imported; every other kind can be connected.
    available = driver_classes()
    return [(k.value, k.label) for k in ProviderKind if k in available and k != ProviderKind.EXISTING]


def _provider_form(data: QueryDict | None, kind: str) -> ProviderForm:
    kinds = _provider_kinds()
    if kind not in dict(kinds):
        kind = kinds[0][0]
    fields = driver_classes()[kind].credential_fields
    return ProviderForm(data, initial={"kind": kind}, kinds=kinds, credential_fields=fields)


def _providers_context(request: HttpRequest, form: ProviderForm) -> dict[str, Any]:
    actor = actor_of(request)
    accounts: QuerySet[ProviderAccount] = selectors.list_provider_accounts(actor)
    return {
        "accounts": list(accounts.defer("credentials")),
        "form": form,
        "can_manage": can(actor, Action.PROVIDER_MANAGE),
        "kinds": [(label, capabilities) for _, label, capabilities in capabilities_by_kind()],
    }


@require_http_methods(["GET", "POST"])
def providers(request: HttpRequest) -> HttpResponse:
    """The org's provider accounts, and a form to connect one (admins)."""
    actor = actor_of(request)
    data = request.POST if request.method == "POST" else None
    form = _provider_form(data, (data or request.GET).get("kind", ""))
    status = 200
    if data is not None:
        status = 400
        if form.is_valid():
            try:
                account = provider_services.create_provider_account(
                    actor,
                    name=form.cleaned_data["name"],
                    kind=form.cleaned_data["kind"],
                    fields=form.credential_values(),
                )
            except FlotillaError as error:
                _place_provider_errors(request, error, form)
                status = error.status
            else:
                messages.success(request, f"Connected {account.name}; its credentials were checked.")
                return org_redirect(request, "clusters:providers")
        form.forget_secrets()
    return render(request, "clusters/providers.html", _providers_context(request, form), status=status)


def _place_provider_errors(request: HttpRequest, error: FlotillaError, form: ProviderForm) -> None:
    placed = False
    for name, reasons in error.fields.items():
        for reason in reasons:
            form.add_error(form.field_for(name), reason)
            placed = True
    if not placed:
        messages.error(request, error.message)


@require_GET
def provider_fields(request: HttpRequest) -> HttpResponse:
    """The credential fields of one provider kind (htmx fragment)."""
    form = _provider_form(None, request.GET.get("kind", ""))
    return render(request, "clusters/partials/provider_fields.html", {"form": form})


@require_POST
@not_found_is_404
def provider_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove an account no live cluster uses."""
    actor = actor_of(request)
    account = selectors.get_provider_account(actor, pk)
    try:
        provider_services.delete_provider_account(actor, account)
    except FlotillaError as error:
        report_error(request, error)
    else:
        messages.success(request, f"Removed {account.name}.")
    return org_redirect(request, "clusters:providers")


@require_POST
@not_found_is_404
def provider_refresh_catalogue(request: HttpRequest, pk: int) -> HttpResponse:
    """Read an account's regions, sizes and versions from the provider again, past the cache."""
    actor = actor_of(request)
    account = selectors.get_provider_account(actor, pk)
    try:
        fresh = provider_services.refresh_provider_catalogue(actor, account)
    except FlotillaError as error:
        report_error(request, error)
    else:
        messages.success(
            request,
            f"Read the catalogue of {account.name} again: {len(fresh.regions)} region(s), "
            f"{len(fresh.versions)} Kubernetes version(s).",
        )
    return org_redirect(request, "clusters:providers")
