"""Live logs, metrics, cluster events, and the websocket endpoints that stream them.

Owns the consumers and websocket routing of the whole portal; events themselves are
published by services through config.events. It does not own what it observes.
"""

from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    """Logs, metrics, events; websockets."""

    name = "observability"
    verbose_name = "Observability"
    default_auto_field = "django.db.models.BigAutoField"
