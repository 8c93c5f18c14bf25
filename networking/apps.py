"""Firewall rules, load balancers, service discovery, DNS records and volumes of an org's clusters.

Builds on clusters (it never provisions clusters itself); does not own snapshots or metrics.
"""

from django.apps import AppConfig


class NetworkingConfig(AppConfig):
    """Networking and storage of workloads."""

    name = "networking"
    verbose_name = "Networking"
    default_auto_field = "django.db.models.BigAutoField"
