"""Websocket URL routes of the portal."""

from django.urls import path

from observability.consumers import OrgEventsConsumer

websocket_urlpatterns = [
    path("ws/o/<slug:org_slug>/events/", OrgEventsConsumer.as_asgi()),
]
