"""Key handling: the org's snapshot keys from the keyring, a data key per snapshot, its envelope."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from snapshots.format.errors import FormatError, Tampered, WrongKey

KEY_ALGORITHM = "A256GCM-HKDF"
KEY_BYTES = 32
NONCE_BYTES = 12
_HKDF_SALT = b"flotilla-snapshots"
_ENVELOPE_AAD = b"flotilla-snapshot/key\x00"


def derive_org_key(keyring_key: bytes, schema_name: str) -> bytes:
    """The org's 32-byte snapshot key from the raw bytes of one keyring key (HKDF-SHA256)."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=_HKDF_SALT, info=b"org:" + schema_name.encode()
    )
    return hkdf.derive(keyring_key)


def org_keys(schema_name: str) -> list[bytes]:
    """Every candidate snapshot key of an org, newest first: one per FLOTILLA_ENCRYPTION_KEYS entry."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    keyring: list[str] = list(settings.FLOTILLA_ENCRYPTION_KEYS)
    if not keyring:
        raise ImproperlyConfigured("FLOTILLA_ENCRYPTION_KEYS is empty: snapshots cannot be encrypted")
    keys = []
    for entry in keyring:
        try:
            raw = base64.urlsafe_b64decode(entry.encode())
        except (binascii.Error, ValueError) as exc:
            raise ImproperlyConfigured(
                "FLOTILLA_ENCRYPTION_KEYS must be url-safe base64 Fernet keys"
            ) from exc
        if len(raw) != KEY_BYTES:
            raise ImproperlyConfigured("FLOTILLA_ENCRYPTION_KEYS must be url-safe base64 Fernet keys")
        keys.append(derive_org_key(raw, schema_name))
    return keys


def key_id(org_key: bytes) -> str:
    """A short, non-secret name of an org key, so that an envelope says which key wrapped it."""
    return hashlib.sha256(org_key).hexdigest()[:16]


def new_data_key() -> bytes:
    """A fresh random AES-256 data key for one snapshot."""
    return os.urandom(KEY_BYTES)


def _envelope_aad(snapshot_id: str) -> bytes:
    return _ENVELOPE_AAD + snapshot_id.encode()


def wrap_key(data_key: bytes, org_key: bytes, *, snapshot_id: str) -> dict[str, str]:
    """The data key encrypted under the org key; bound to the snapshot id so it cannot be reused."""
    nonce = os.urandom(NONCE_BYTES)
    wrapped = AESGCM(org_key).encrypt(nonce, data_key, _envelope_aad(snapshot_id))
    return {
        "alg": KEY_ALGORITHM,
        "key_id": key_id(org_key),
        "nonce": base64.b64encode(nonce).decode(),
        "wrapped": base64.b64encode(wrapped).decode(),
    }


def unwrap_key(envelope: dict[str, str], org_keys: list[bytes], *, snapshot_id: str) -> bytes:
    """The snapshot's data key, opened with whichever of the org's keys wrapped it."""
    if not isinstance(envelope, dict):
        raise Tampered("The manifest's key envelope is not a JSON object.")
    alg = envelope.get("alg")
    if alg != KEY_ALGORITHM:
        raise FormatError(
            f"The manifest's key envelope uses the algorithm {alg!r}, which Flotilla does not know."
        )
    try:
        nonce = base64.b64decode(envelope["nonce"], validate=True)
        wrapped = base64.b64decode(envelope["wrapped"], validate=True)
    except (KeyError, TypeError, binascii.Error, ValueError) as exc:
        raise Tampered("The manifest's key envelope is malformed (nonce or wrapped key).") from exc
    if len(nonce) != NONCE_BYTES:
        raise Tampered("The manifest's key envelope is malformed (nonce or wrapped key).")
    # The key the envelope names is tried first; the others still are, in case key ids were lost.
    named = envelope.get("key_id")
    candidates = sorted(org_keys, key=lambda key: key_id(key) != named)
    aad = _envelope_aad(snapshot_id)
    for candidate in candidates:
        try:
            data_key = AESGCM(candidate).decrypt(nonce, wrapped, aad)
        except InvalidTag:
            continue
        if len(data_key) == KEY_BYTES:
            return data_key
    raise WrongKey(
        f"The data key of snapshot {snapshot_id} cannot be opened with this organisation's keys "
        f"(it was wrapped by key {named}): the snapshot belongs to another organisation or snapshot, "
        "or the key that wrapped it was removed from FLOTILLA_ENCRYPTION_KEYS."
    )
