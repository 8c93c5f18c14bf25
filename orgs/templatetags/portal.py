"""Template helpers for org-scoped URLs."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag(takes_context=True)
def org_url(context: dict[str, Any], name: str, *args: Any) -> str:
    """Reverse an org-scoped URL for the org of the current request."""
    request = context["request"]
    return reverse(name, kwargs={"org_slug": request.org.slug, **({"pk": args[0]} if args else {})})
