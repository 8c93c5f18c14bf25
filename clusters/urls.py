"""Portal pages of the clusters app, under /o/<org-slug>/clusters/."""

from __future__ import annotations

from django.urls import URLPattern

app_name = "clusters"
urlpatterns: list[URLPattern] = []
