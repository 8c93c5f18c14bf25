"""Turning domain errors into portal feedback: field errors on the form, or a message."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest

from orgs.exceptions import FlotillaError


def report_error(request: HttpRequest, error: FlotillaError, form: forms.Form | None = None) -> None:
    """Attach an error to the form's fields where it names them, else flash it."""
    placed = False
    if form is not None:
        for field, reasons in error.fields.items():
            target = field if field in form.fields else None
            for reason in reasons:
                form.add_error(target, reason)
                placed = True
    if not placed:
        messages.error(request, error.message)
