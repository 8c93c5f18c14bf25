"""Launching a cluster (the form and its provider-driven pickers) and importing one."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from clusters import selectors
from clusters.forms import (
    LOCAL_ON_FIRST_USE,
    ClusterForm,
    ImportForm,
    PoolForm,
    PoolFormSet,
    account_choice,
)
from clusters.models import ProviderAccount
from clusters.permissions import Action, can
from clusters.providers.catalogue import Catalogue, read_catalogue
from clusters.services import clusters as cluster_services
from clusters.services import providers as provider_services
from clusters.views.common import (
    actor_of,
    needs_role,
    org_redirect,
    place_errors,
)
from orgs.actors import Actor
from orgs.exceptions import FlotillaError

# --- Create --------------------------------------------------------------------------------


@dataclass
class ClusterFormPage:
    """The create form, its pool rows and the catalogue of the chosen provider."""

    form: ClusterForm
    pools: Any  # a PoolFormSet
    catalogue: Catalogue
    accounts: list[ProviderAccount]

    def is_valid(self) -> bool:
        return all([self.form.is_valid(), self.pools.is_valid()])

    def rows(self) -> list[PoolForm]:
        """The filled-in pool rows, in the order the service receives them."""
        return [row for row in self.pools.forms if row.cleaned_data]

    def context(self, **extra: Any) -> dict[str, Any]:
        return {
            "form": self.form,
            "pools": self.pools,
            "catalogue": self.catalogue,
            "has_accounts": bool(self.accounts),
            **extra,
        }


def _cluster_form_page(actor: Actor, data: QueryDict | None) -> ClusterFormPage:
    accounts = selectors.launchable_provider_accounts(actor)
    wanted = data.get("provider", "") if data is not None else ""
    account = next((a for a in accounts if account_choice(a) == wanted), accounts[0] if accounts else None)
    catalogue = read_catalogue(account, data.get("region", "") if data is not None else "")
    initial = {
        "provider": account_choice(account) if account else "",
        "region": catalogue.region,
        "version": catalogue.versions[0] if catalogue.versions else "",
        "request_id": secrets.token_urlsafe(16),
    }
    form = ClusterForm(
        data,
        initial=initial,
        accounts=accounts,
        regions=catalogue.regions,
        versions=catalogue.versions,
    )
    pools = PoolFormSet(
        data,
        prefix="pools",
        initial=None if data is not None else [{"name": "default", "count": 1}],
        form_kwargs={"sizes": catalogue.sizes},
    )
    return ClusterFormPage(form, pools, catalogue, accounts)


def _idempotency_key(request_id: str, name: str) -> str:
    # The same form sent twice (a double click) replays the first request; the same form sent
    # again for another cluster (back button, new name) is a new request.
    return f"portal:{request_id}:{name.strip()}" if request_id else ""


def _chosen_account(actor: Actor, choice: str) -> ProviderAccount:
    """The account the form names; the local one is made now if this is its first use."""
    if choice == LOCAL_ON_FIRST_USE:
        return provider_services.ensure_local_provider(actor)
    return selectors.get_provider_account(actor, int(choice))


@require_http_methods(["GET", "POST"])
def cluster_create(request: HttpRequest) -> HttpResponse:
    """Launch a cluster on one of the org's provider accounts."""
    actor = actor_of(request)
    if request.method == "GET" and not can(actor, Action.CLUSTER_CREATE):
        messages.error(request, needs_role("Creating clusters", Action.CLUSTER_CREATE))
        return org_redirect(request, "clusters:list")
    data = request.POST if request.method == "POST" else None
    page = _cluster_form_page(actor, data)
    status = 200
    if data is not None:
        status = 400
        if page.is_valid():
            cleaned = page.form.cleaned_data
            rows = page.rows()
            try:
                account = _chosen_account(actor, cleaned["provider"])
                requested = cluster_services.create_cluster(
                    actor,
                    name=cleaned["name"],
                    provider=account,
                    region=cleaned["region"],
                    version=cleaned["version"],
                    pools=[row.pool() for row in rows],
                    idempotency_key=_idempotency_key(cleaned["request_id"], cleaned["name"]),
                )
            except FlotillaError as error:
                place_errors(request, error, page.form, rows)
                status = error.status
            else:
                messages.success(request, f"Creating {requested.cluster.name}: follow its progress below.")
                return org_redirect(request, "clusters:detail", pk=requested.cluster.pk)
    return render(request, "clusters/create.html", page.context(), status=status)


@require_GET
def create_options(request: HttpRequest) -> HttpResponse:
    """The create form's provider-dependent part (region, version, pools) for another provider or region."""
    page = _cluster_form_page(actor_of(request), request.GET)
    return render(request, "clusters/partials/cluster_options.html", page.context(show_errors=False))


# --- Import --------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def cluster_import(request: HttpRequest) -> HttpResponse:
    """Bring a running cluster in by kubeconfig."""
    actor = actor_of(request)
    if request.method == "GET" and not can(actor, Action.CLUSTER_CREATE):
        messages.error(request, needs_role("Importing clusters", Action.CLUSTER_CREATE))
        return org_redirect(request, "clusters:list")
    form = ImportForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                requested = cluster_services.import_cluster(
                    actor,
                    name=form.cleaned_data["name"],
                    kubeconfig=form.cleaned_data["kubeconfig_text"],
                    context=form.cleaned_data["context"].strip() or None,
                )
            except FlotillaError as error:
                place_errors(request, error, form)
                status = error.status
            else:
                messages.success(
                    request,
                    f"Importing {requested.cluster.name}: Flotilla is reaching its API; progress and "
                    "the outcome show below.",
                )
                return org_redirect(request, "clusters:detail", pk=requested.cluster.pk)
    return render(request, "clusters/import.html", {"form": form}, status=status)
