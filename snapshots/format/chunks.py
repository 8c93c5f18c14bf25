"""Chunks: the objects of one resource kind, as checksummed JSON lines, compressed and encrypted.

A chunk's plaintext is zlib-compressed text: one header line (a JSON object naming the chunk), then
one line per object, `<sha256 hex of the object's canonical JSON> <canonical JSON>`. Canonical JSON
never holds a raw newline, so lines split cleanly. Stored bytes are `nonce (12) || AES-256-GCM
ciphertext and tag`, with the snapshot id, the chunk name and the kind as associated data.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from snapshots.format.errors import FormatError, Tampered, Truncated
from snapshots.format.keys import NONCE_BYTES

FORMAT_VERSION = 1
# Level 1 compresses Kubernetes JSON about 4:1 at several hundred MB/s; higher levels gain little
# on this data and would make zlib the largest cost of a snapshot.
ZLIB_LEVEL = 1
DEFAULT_TARGET_BYTES = 4 << 20
_TAG_BYTES = 16
_DIGEST_HEX = 64
# One reusable encoder: json.dumps with options builds a new encoder on every call.
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_decode = json.JSONDecoder().decode


def canonical(obj: Any) -> bytes:
    """The canonical JSON of a value: sorted keys, no spaces, UTF-8; what every digest is taken of.

    orjson writes exactly these bytes, several times faster than the standard library; a value
    it refuses (a lone surrogate from a "\\ud800" escape in the API's JSON) is written by the
    standard library, which keeps it.
    """
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return _encode(obj).encode("utf-8", "surrogatepass")


def object_digest(obj: dict[str, Any]) -> str:
    """The SHA-256 (hex) of one object's canonical JSON, as the chunk and the manifest record it."""
    return hashlib.sha256(canonical(obj)).hexdigest()


@dataclass(frozen=True)
class ChunkInfo:
    """What the manifest lists for every chunk: its name, its kind, its sizes and its checksum."""

    name: str
    api_version: str
    kind: str
    namespaced: bool
    count: int
    raw_bytes: int
    stored_bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        """The manifest's JSON form of this entry."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkInfo:
        """An entry read back from a manifest; a missing or mistyped field is a format error."""
        try:
            info = cls(
                name=str(data["name"]),
                api_version=str(data["api_version"]),
                kind=str(data["kind"]),
                namespaced=bool(data["namespaced"]),
                count=int(data["count"]),
                raw_bytes=int(data["raw_bytes"]),
                stored_bytes=int(data["stored_bytes"]),
                sha256=str(data["sha256"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"A chunk entry of the manifest is malformed: {exc!r}.") from exc
        return info


@dataclass(frozen=True)
class SealedChunk:
    """A chunk ready to be stored: its manifest entry and its encrypted bytes."""

    info: ChunkInfo
    data: bytes


def _chunk_aad(snapshot_id: str, name: str, api_version: str, kind: str) -> bytes:
    return "\x00".join(
        ("flotilla-snapshot/chunk", str(FORMAT_VERSION), snapshot_id, name, api_version, kind)
    ).encode()


def _chunk_header(name: str, api_version: str, kind: str, namespaced: bool, count: int) -> bytes:
    return canonical(
        {
            "api_version": api_version,
            "chunk": name,
            "count": count,
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "namespaced": namespaced,
        }
    )


class ChunkBuilder:
    """Objects of one resource kind into sealed chunks of about `target_bytes` raw JSON each."""

    def __init__(
        self,
        snapshot_id: str,
        data_key: bytes,
        *,
        api_version: str,
        kind: str,
        namespaced: bool,
        prefix: str,
        target_bytes: int = DEFAULT_TARGET_BYTES,
        first_seq: int = 0,
    ) -> None:
        self.snapshot_id = snapshot_id
        self.api_version = api_version
        self.kind = kind
        self.namespaced = namespaced
        self.prefix = prefix
        self.target_bytes = target_bytes
        self._aead = AESGCM(data_key)
        self._lines: list[bytes] = []
        self._pending_bytes = 0
        # A snapshot resumed mid-resource goes on numbering its chunks where the last pass stopped.
        self._seq = first_seq
        self.objects = 0
        self.raw_bytes = 0
        self.stored_bytes = 0
        self.chunks: list[ChunkInfo] = []
        self.owner_uids: set[str] = set()

    def add(self, obj: dict[str, Any]) -> SealedChunk | None:
        """Add one object; the sealed chunk when this object filled one, else None."""
        # A lone surrogate (from a "\\ud800" escape in the API's JSON) is kept, not refused.
        raw = canonical(obj)
        self._lines.append(hashlib.sha256(raw).hexdigest().encode() + b" " + raw)
        self._pending_bytes += len(raw)
        self.objects += 1
        self.raw_bytes += len(raw)
        metadata = obj.get("metadata")
        if metadata:
            for reference in metadata.get("ownerReferences") or ():
                uid = reference.get("uid")
                if uid:
                    self.owner_uids.add(uid)
        if self._pending_bytes >= self.target_bytes:
            return self._seal()
        return None

    def add_deferred(self, obj: dict[str, Any]) -> Callable[[], SealedChunk] | None:
        """`add`, except that a full chunk comes back as a function that seals it: compression and
        encryption release the GIL, so a caller can run it in another thread meanwhile."""
        raw = canonical(obj)
        self._lines.append(hashlib.sha256(raw).hexdigest().encode() + b" " + raw)
        self._pending_bytes += len(raw)
        self.objects += 1
        self.raw_bytes += len(raw)
        if self._pending_bytes >= self.target_bytes:
            return self._detach()
        return None

    def flush_deferred(self) -> Callable[[], SealedChunk] | None:
        """`flush`, deferred like `add_deferred`."""
        if not self._lines:
            return None
        return self._detach()

    @property
    def next_seq(self) -> int:
        """The sequence number the next chunk will get."""
        return self._seq

    def flush(self) -> SealedChunk | None:
        """The last, partial chunk, or None when no object is waiting."""
        if not self._lines:
            return None
        return self._seal()

    def _seal(self) -> SealedChunk:
        return self._detach()()

    def _detach(self) -> Callable[[], SealedChunk]:
        """Take the waiting objects as the next chunk; the function returned seals them."""
        name = f"{self.prefix}-{self._seq:05d}"
        self._seq += 1
        count = len(self._lines)
        lines = self._lines
        raw_bytes = self._pending_bytes
        self._lines = []
        self._pending_bytes = 0
        lines.insert(0, _chunk_header(name, self.api_version, self.kind, self.namespaced, count))
        lines.append(b"")  # so that the last line ends in a newline too
        aad = _chunk_aad(self.snapshot_id, name, self.api_version, self.kind)

        def seal() -> SealedChunk:
            # One join: the chunk's text exists once, beside its lines, while it is compressed.
            plain = zlib.compress(b"\n".join(lines), ZLIB_LEVEL)
            nonce = os.urandom(NONCE_BYTES)
            data = nonce + self._aead.encrypt(nonce, plain, aad)
            info = ChunkInfo(
                name=name,
                api_version=self.api_version,
                kind=self.kind,
                namespaced=self.namespaced,
                count=count,
                raw_bytes=raw_bytes,
                stored_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            self.stored_bytes += len(data)
            self.chunks.append(info)
            return SealedChunk(info=info, data=data)

        return seal


def _objects(lines: list[bytes]) -> Iterator[dict[str, Any]]:
    # Decoded one at a time, so a consumer holds one chunk's bytes, not all its objects as dicts.
    for line in lines:
        body = line[_DIGEST_HEX + 1 :]
        try:
            yield orjson.loads(body)
        except orjson.JSONDecodeError:  # a lone surrogate: the standard library keeps it
            yield _decode(body.decode("utf-8", "surrogatepass"))


def verify_chunk(info: ChunkInfo, data: bytes) -> None:
    """The cheap checks of a stored chunk (length and SHA-256), without decrypting it: a restore
    runs them over every chunk before it writes anything."""
    what = f"Chunk {info.name} ({info.api_version} {info.kind})"
    if len(data) < info.stored_bytes:
        raise Truncated(f"{what} is truncated: {len(data)} of its {info.stored_bytes} bytes are stored.")
    if len(data) != info.stored_bytes or hashlib.sha256(data).hexdigest() != info.sha256:
        raise Tampered(f"{what} was altered: its SHA-256 does not match the manifest.")


def open_chunk(snapshot_id: str, data_key: bytes, info: ChunkInfo, data: bytes) -> Iterator[dict[str, Any]]:
    """The objects of one stored chunk, after every check has passed (the checks run at the call)."""
    what = f"Chunk {info.name} ({info.api_version} {info.kind}) of snapshot {snapshot_id}"
    if len(data) < info.stored_bytes:
        raise Truncated(
            f"{what} is truncated: {len(data)} bytes are stored, the manifest lists {info.stored_bytes}."
        )
    if len(data) > info.stored_bytes:
        raise Tampered(
            f"{what} was altered: {len(data)} bytes are stored, the manifest lists {info.stored_bytes}."
        )
    if hashlib.sha256(data).hexdigest() != info.sha256:
        raise Tampered(f"{what} was altered: its SHA-256 does not match the manifest.")
    if len(data) < NONCE_BYTES + _TAG_BYTES:
        raise Truncated(f"{what} is too short to be a chunk ({len(data)} bytes).")
    aad = _chunk_aad(snapshot_id, info.name, info.api_version, info.kind)
    try:
        plain = AESGCM(data_key).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise Tampered(
            f"{what} fails authentication: it was altered, or belongs to another chunk or snapshot."
        ) from exc
    lines = _decompress(plain, info, what).split(b"\n")
    if lines[-1] != b"":
        raise Truncated(f"{what} ends in the middle of an object.")
    lines.pop()
    header_line = lines.pop(0) if lines else b""
    expected = _chunk_header(info.name, info.api_version, info.kind, info.namespaced, info.count)
    if header_line != expected:
        raise Tampered(f"{what}: its header does not match the manifest's entry.")
    if len(lines) != info.count:
        raise Tampered(f"{what} holds {len(lines)} objects, the manifest lists {info.count}.")
    for index, line in enumerate(lines):
        if hashlib.sha256(line[_DIGEST_HEX + 1 :]).hexdigest().encode() != line[:_DIGEST_HEX]:
            raise Tampered(f"{what}: object #{index} does not match its SHA-256.")
    return _objects(lines)


def _decompress(plain: bytes, info: ChunkInfo, what: str) -> bytes:
    # The plaintext is authenticated, so this bound only guards against a bug or a leaked key.
    limit = info.raw_bytes + info.count * (_DIGEST_HEX + 2) + 4096
    decompressor = zlib.decompressobj()
    try:
        text = decompressor.decompress(plain, limit)
    except zlib.error as exc:
        raise Tampered(f"{what} does not decompress: {exc}.") from exc
    if decompressor.unconsumed_tail or not decompressor.eof:
        raise Tampered(f"{what} decompresses to more or fewer bytes than the manifest lists.")
    return text
