"""What the clusters app's portal views share: the acting member, org URLs, form errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from enum import StrEnum
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse

from clusters.choices import ClusterStatus
from clusters.forms import (
    PoolForm,
)
from orgs.actors import Actor
from orgs.exceptions import FlotillaError, NotFound
from orgs.permissions import least_role

View = Callable[..., HttpResponseBase]
# "pools[1].count" names a field of the second pool the service was given.
_POOL_FIELD = re.compile(r"^pools\[(\d+)\](?:\.(\w+))?$")
GONE = (ClusterStatus.DELETING, ClusterStatus.DELETED)


def actor_of(request: HttpRequest) -> Actor:
    return request.actor  # type: ignore[attr-defined,no-any-return]


def org_url(request: HttpRequest, name: str, **kwargs: Any) -> str:
    """An org-scoped URL of the current org, with any other kwargs."""
    return reverse(name, kwargs={"org_slug": request.org.slug, **kwargs})  # type: ignore[attr-defined]


def org_redirect(request: HttpRequest, name: str, **kwargs: Any) -> HttpResponse:
    return redirect(org_url(request, name, **kwargs))


def not_found_is_404(view: View) -> View:
    """One 404 page whether the object is missing or another org's (selectors raise NotFound)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return view(request, *args, **kwargs)
        except NotFound:
            return render(request, "orgs/not_found.html", status=404)

    return wrapper


def needs_role(what: str, action: StrEnum) -> str:
    return f"{what} needs the {least_role(action).label.lower()} role or higher."


def is_fragment(request: HttpRequest) -> bool:
    return bool(request.headers.get("HX-Request"))


def place_errors(
    request: HttpRequest, error: FlotillaError, form: forms.Form, rows: Sequence[PoolForm] = ()
) -> None:
    """A service error on the fields it names: `pools[i].x` on the i-th pool row, else the form."""
    placed = False
    for name, reasons in error.fields.items():
        match = _POOL_FIELD.match(name)
        for reason in reasons:
            if match is not None and int(match.group(1)) < len(rows):
                row = rows[int(match.group(1))]
                row.add_error(match.group(2) if match.group(2) in row.fields else None, reason)
            else:
                form.add_error(name if name in form.fields else None, reason)
            placed = True
    if not placed:
        messages.error(request, error.message)
