"""Storage locations, under the org's settings: the list, adding one (checked against the storage
before it is saved), checking one again, making one the default, and deleting one."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from clusters.views.common import actor_of, needs_role, not_found_is_404, org_redirect, org_url
from orgs.actors import Actor
from orgs.exceptions import FlotillaError
from orgs.feedback import report_error
from snapshots import selectors
from snapshots.forms import LocationForm
from snapshots.models import StorageLocation
from snapshots.permissions import Action, can
from snapshots.services import locations as location_services
from snapshots.views.common import refuse_unless, refused_by_service


@require_GET
def locations(request: HttpRequest) -> HttpResponse:
    """The org's storage locations, with their last check and how many snapshots each holds."""
    actor = actor_of(request)
    context = {
        "locations": list(selectors.list_locations(actor)),
        "can_manage": can(actor, Action.STORAGE_MANAGE),
        "can_check": can(actor, Action.STORAGE_VIEW),
    }
    return render(request, "snapshots/locations.html", context)


@require_http_methods(["GET", "POST"])
def location_create(request: HttpRequest) -> HttpResponse:
    """Add a storage location; nothing is saved unless the storage accepts a test write."""
    actor = actor_of(request)
    back = org_url(request, "snapshots:locations")
    if request.method == "GET" and not can(actor, Action.STORAGE_MANAGE):
        messages.error(request, needs_role("Adding storage locations", Action.STORAGE_MANAGE))
        return org_redirect(request, "snapshots:locations")
    denied = refuse_unless(
        request,
        can(actor, Action.STORAGE_MANAGE),
        "Adding storage locations",
        Action.STORAGE_MANAGE,
        back,
        "storage locations",
    )
    if denied is not None:
        return denied
    form = LocationForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                location = location_services.create_location(actor, form.location_data())
            except FlotillaError as error:
                if error.status == 403:
                    return refused_by_service(request, error, back, "storage locations")
                if not form.add_service_errors(error.fields):
                    messages.error(request, error.message)
                status = error.status
            else:
                default = " It is the default for new snapshots." if location.is_default else ""
                messages.success(
                    request, f"Added storage location {location.name}: a test write succeeded.{default}"
                )
                return org_redirect(request, "snapshots:locations")
    return render(request, "snapshots/location_create.html", {"form": form}, status=status)


def _location_action(
    request: HttpRequest, pk: int, needs: Action, what: str, act: Callable[[Actor, StorageLocation], str]
) -> HttpResponse:
    """Run one write on a location; its message or error is shown on the list."""
    actor = actor_of(request)
    location = selectors.get_location(actor, pk)
    back = org_url(request, "snapshots:locations")
    denied = refuse_unless(request, can(actor, needs), what, needs, back, "storage locations")
    if denied is not None:
        return denied
    try:
        done = act(actor, location)
    except FlotillaError as error:
        if error.status == 403:
            return refused_by_service(request, error, back, "storage locations")
        report_error(request, error)
        return org_redirect(request, "snapshots:locations")
    messages.success(request, done)
    return org_redirect(request, "snapshots:locations")


@require_POST
@not_found_is_404
def location_check(request: HttpRequest, pk: int) -> HttpResponse:
    """Check a location again (a list and a small write + delete); the result is kept on it."""

    def act(actor: Actor, location: StorageLocation) -> str:
        checked = location_services.check_location(actor, location)
        if checked.check_error:
            raise FlotillaError(f"Storage location {checked.name} does not answer: {checked.check_error}")
        return f"Storage location {checked.name} answers: a test write succeeded."

    return _location_action(request, pk, Action.STORAGE_VIEW, "Checking storage locations", act)


@require_POST
@not_found_is_404
def location_default(request: HttpRequest, pk: int) -> HttpResponse:
    """Make a location the one new snapshots go to unless another is chosen."""

    def act(actor: Actor, location: StorageLocation) -> str:
        location_services.update_location(actor, location, {"is_default": True})
        return f"New snapshots go to {location.name} unless another location is chosen."

    return _location_action(request, pk, Action.STORAGE_MANAGE, "Changing the default storage location", act)


@require_POST
@not_found_is_404
def location_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove a location that holds no snapshot (refused, with the service's reason, while it does)."""

    def act(actor: Actor, location: StorageLocation) -> str:
        name = location.name
        location_services.delete_location(actor, location)
        return f"Removed storage location {name}; any files already in it are left where they are."

    return _location_action(request, pk, Action.STORAGE_MANAGE, "Removing storage locations", act)
