"""The operations engine's public-schema part: the dispatch index of every org's due operations.

The engine itself (clusters.engine) runs every long job of every app — cluster changes, app
rollouts, snapshots, restores — with one claim, heartbeat, backoff, cancel, retry, hand-over and
sweeper. Operations live in each org's schema (clusters.Operation); this app holds only the small
table that tells the dispatcher, across orgs, which operation is due when.
"""

from django.apps import AppConfig


class EngineConfig(AppConfig):
    """The dispatch index (public schema)."""

    name = "clusters.engine"
    label = "engine"
    verbose_name = "Operations engine"
    default_auto_field = "django.db.models.BigAutoField"
