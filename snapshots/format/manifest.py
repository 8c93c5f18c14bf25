"""The manifest: a clear, authenticated header with the key envelope, then the encrypted body.

Stored bytes: `<header JSON>\\n<nonce (12)><AES-256-GCM ciphertext and tag>`. The header line is the
associated data of the body, so a changed header fails authentication like a changed body. The
body is the zlib-compressed canonical JSON of the Manifest, sealed under the snapshot's data key.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from snapshots.format.chunks import FORMAT_VERSION, ZLIB_LEVEL, ChunkInfo, canonical
from snapshots.format.errors import FormatError, Tampered, Truncated, UnknownFormatVersion
from snapshots.format.keys import NONCE_BYTES, unwrap_key

FORMAT_NAME = "flotilla-snapshot"
_TAG_BYTES = 16
_BODY_AAD = b"flotilla-snapshot/manifest\x00"
# A header is a few hundred bytes; a manifest without a newline this early is not one of ours.
_MAX_HEADER_BYTES = 64 << 10


@dataclass(kw_only=True)
class Manifest:
    """Everything needed to restore or clone a snapshot, and to check every byte of it."""

    format_version: int = FORMAT_VERSION
    snapshot_id: str
    created_at: str
    cluster: dict[str, Any] = field(default_factory=dict)
    selection: dict[str, Any] = field(default_factory=dict)
    chunks: list[ChunkInfo] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    object_count: int = 0
    raw_bytes: int = 0
    stored_bytes: int = 0
    owner_uids: list[str] = field(default_factory=list)
    conditions: list[dict[str, str]] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The body's JSON form."""
        return {
            "format_version": self.format_version,
            "snapshot_id": self.snapshot_id,
            "created_at": self.created_at,
            "cluster": self.cluster,
            "selection": self.selection,
            "chunks": [chunk.to_dict() for chunk in self.chunks],
            "kinds": self.kinds,
            "object_count": self.object_count,
            "raw_bytes": self.raw_bytes,
            "stored_bytes": self.stored_bytes,
            "owner_uids": self.owner_uids,
            "conditions": self.conditions,
            "resources": self.resources,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """A manifest read back from its body; a missing or mistyped field is a format error."""
        try:
            return cls(
                format_version=int(data["format_version"]),
                snapshot_id=str(data["snapshot_id"]),
                created_at=str(data["created_at"]),
                cluster=dict(data["cluster"]),
                selection=dict(data["selection"]),
                chunks=[ChunkInfo.from_dict(chunk) for chunk in data["chunks"]],
                kinds={str(kind): int(count) for kind, count in data["kinds"].items()},
                object_count=int(data["object_count"]),
                raw_bytes=int(data["raw_bytes"]),
                stored_bytes=int(data["stored_bytes"]),
                owner_uids=[str(uid) for uid in data["owner_uids"]],
                conditions=[dict(condition) for condition in data["conditions"]],
                resources=[dict(resource) for resource in data["resources"]],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FormatError(f"The manifest's body is malformed: {exc!r}.") from exc


def seal_manifest(manifest: Manifest, data_key: bytes, envelope: dict[str, str]) -> bytes:
    """The manifest's stored bytes: the clear header line, then the encrypted, authenticated body."""
    plain = zlib.compress(canonical(manifest.to_dict()), ZLIB_LEVEL)
    body_bytes = NONCE_BYTES + len(plain) + _TAG_BYTES
    header = canonical(
        {
            "format": FORMAT_NAME,
            "format_version": manifest.format_version,
            "snapshot_id": manifest.snapshot_id,
            "key": envelope,
            "body_bytes": body_bytes,
        }
    )
    nonce = os.urandom(NONCE_BYTES)
    return header + b"\n" + nonce + AESGCM(data_key).encrypt(nonce, plain, _BODY_AAD + header)


def _split(data: bytes) -> tuple[bytes, bytes]:
    end = data.find(b"\n", 0, _MAX_HEADER_BYTES)
    if end < 0:
        if len(data) < _MAX_HEADER_BYTES and data.startswith(b'{"'):
            raise Truncated(f"The manifest is truncated: its {len(data)} bytes end inside the header.")
        raise FormatError("These bytes are not a Flotilla snapshot manifest (no header line).")
    return data[:end], data[end + 1 :]


def read_header(data: bytes) -> dict[str, Any]:
    """The manifest's clear header; an unknown format version is refused before anything else."""
    line, _body = _split(data)
    try:
        header = json.loads(line)
    except ValueError as exc:
        raise FormatError(
            "These bytes are not a Flotilla snapshot manifest (the header is not JSON)."
        ) from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise FormatError("These bytes are not a Flotilla snapshot manifest (no flotilla-snapshot header).")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise UnknownFormatVersion(
            f"The manifest of snapshot {header.get('snapshot_id')} is in format version {version!r}; "
            f"this Flotilla reads version {FORMAT_VERSION} only."
        )
    if not isinstance(header.get("snapshot_id"), str) or not isinstance(header.get("key"), dict):
        raise Tampered("The manifest's header lacks its snapshot id or its key envelope.")
    if not isinstance(header.get("body_bytes"), int):
        raise Tampered("The manifest's header lacks the size of its body.")
    return header


def open_manifest(data: bytes, org_keys: list[bytes], *, snapshot_id: str) -> tuple[Manifest, bytes]:
    """The manifest and the snapshot's data key, once the header, the key and the body all check out."""
    header = read_header(data)
    line, body = _split(data)
    if header["snapshot_id"] != snapshot_id:
        raise Tampered(
            f"The manifest stored for snapshot {snapshot_id} belongs to snapshot {header['snapshot_id']}."
        )
    expected = header["body_bytes"]
    if len(body) < expected:
        raise Truncated(
            f"The manifest of snapshot {snapshot_id} is truncated: "
            f"its body has {len(body)} bytes of {expected}."
        )
    if len(body) > expected or expected < NONCE_BYTES + _TAG_BYTES:
        raise Tampered(
            f"The manifest of snapshot {snapshot_id} was altered: its body is not {expected} bytes."
        )
    data_key = unwrap_key(header["key"], org_keys, snapshot_id=snapshot_id)
    try:
        plain = AESGCM(data_key).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], _BODY_AAD + line)
    except InvalidTag as exc:
        raise Tampered(
            f"The manifest of snapshot {snapshot_id} fails authentication: it was altered."
        ) from exc
    try:
        document = json.loads(zlib.decompress(plain).decode("utf-8", "surrogatepass"))
    except (zlib.error, ValueError) as exc:
        raise Tampered(f"The manifest of snapshot {snapshot_id} does not decode: {exc}.") from exc
    if not isinstance(document, dict):
        raise Tampered(f"The manifest of snapshot {snapshot_id} is not a JSON object.")
    manifest = Manifest.from_dict(document)
    if manifest.snapshot_id != snapshot_id or manifest.format_version != FORMAT_VERSION:
        raise Tampered(f"The manifest of snapshot {snapshot_id} names another snapshot or format inside.")
    return manifest, data_key


def manifest_digest(data: bytes) -> str:
    """The SHA-256 (hex) of the manifest's stored bytes, kept in the database to spot a swap."""
    return hashlib.sha256(data).hexdigest()
