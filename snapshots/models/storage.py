"""Storage locations: where an org's snapshots are written (through libcloud storage drivers)."""

from __future__ import annotations

import json

from django.db import models
from django.utils import timezone

from orgs.crypto import EncryptedTextField, Secret
from snapshots.choices import StorageKind


class StorageLocation(models.Model):
    """One place an org keeps snapshots: its own local directory, an S3 bucket, another driver.

    `credentials` is JSON {"key": ..., "secret": ...}, encrypted at rest and never returned.
    """

    name = models.CharField(max_length=63, unique=True)
    kind = models.CharField(max_length=10, choices=StorageKind.choices, default=StorageKind.LOCAL)
    driver = models.CharField(max_length=40, blank=True)
    bucket = models.CharField(max_length=255, blank=True)
    endpoint = models.CharField(max_length=500, blank=True)
    region = models.CharField(max_length=63, blank=True)
    prefix = models.CharField(max_length=200, blank=True)
    credentials = EncryptedTextField(blank=True, default="")
    # Non-secret driver options (an allow-list per driver, checked by snapshots.storage).
    options = models.JSONField(default=dict, blank=True)
    is_default = models.BooleanField(default=False)
    created_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    checked_at = models.DateTimeField(null=True, blank=True)
    check_error = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_location"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def secret_parts(self) -> dict[str, str]:
        """The decrypted credentials, for opening the store only."""
        raw = (
            self.credentials.reveal() if isinstance(self.credentials, Secret) else str(self.credentials or "")
        )
        return {str(k): str(v) for k, v in json.loads(raw).items()} if raw else {}

    @property
    def has_credentials(self) -> bool:
        """Whether credentials are stored (never what they are)."""
        return bool(self.credentials)
