"""Secrets at rest: Fernet encryption with rotatable keys from FLOTILLA_ENCRYPTION_KEYS.

The first key encrypts; every key decrypts, so a new key is rolled out by putting it first,
running `manage.py rotate_secrets`, then dropping the old key.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

_PREFIX = "fernet:"


@lru_cache(maxsize=4)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FLOTILLA_ENCRYPTION_KEYS is empty: secrets cannot be stored")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured("FLOTILLA_ENCRYPTION_KEYS must be url-safe base64 Fernet keys") from exc


def _fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.FLOTILLA_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    """Encrypt with the newest key; the result is an ASCII token with a scheme prefix."""
    return _PREFIX + _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt with any configured key; a token no key opens is an error, never returned raw."""
    if not token.startswith(_PREFIX):
        raise ValueError("value is not an encrypted secret")
    try:
        return _fernet().decrypt(token[len(_PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise ValueError("no configured encryption key opens this secret") from exc


def rotate(token: str) -> str:
    """Re-encrypt a stored token under the newest key."""
    return _PREFIX + _fernet().rotate(token[len(_PREFIX) :].encode()).decode()


class Secret(str):
    """A decrypted value that does not print itself (repr, str in templates and logs)."""

    def __repr__(self) -> str:
        return "Secret('********')"

    def reveal(self) -> str:
        """The clear value, asked for explicitly."""
        return str.__str__(self)

    def __str__(self) -> str:
        return "********"


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]
    """A text column stored Fernet-encrypted; reads give a `Secret`, call `.reveal()` to use it."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Secret | None:
        if value is None:
            return None
        return Secret(decrypt(value))

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, Secret):
            return value
        if isinstance(value, str) and value.startswith(_PREFIX):
            return Secret(decrypt(value))
        return Secret(value) if isinstance(value, str) else value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        clear = value.reveal() if isinstance(value, Secret) else str(value)
        return encrypt(clear)

    def value_to_string(self, obj: Any) -> str:
        # Serialisation (dumpdata, admin history) never sees the clear value.
        return "********"
