"""Enumerations the CLI validates before calling the API."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Roles of a member or a token in an organisation, highest first."""

    owner = "owner"
    admin = "admin"
    member = "member"
    viewer = "viewer"
