"""The snapshot format, as pure functions: keys, chunks and the manifest (bytes in, bytes out).

See docs/snapshot-format.md for the layout; nothing here does I/O, and only `org_keys` reads
Django settings.
"""

from snapshots.format.chunks import (
    DEFAULT_TARGET_BYTES,
    FORMAT_VERSION,
    ChunkBuilder,
    ChunkInfo,
    SealedChunk,
    canonical,
    object_digest,
    open_chunk,
    verify_chunk,
)
from snapshots.format.errors import FormatError, Tampered, Truncated, UnknownFormatVersion, WrongKey
from snapshots.format.keys import derive_org_key, key_id, new_data_key, org_keys, unwrap_key, wrap_key
from snapshots.format.manifest import Manifest, manifest_digest, open_manifest, read_header, seal_manifest

__all__ = [
    "DEFAULT_TARGET_BYTES",
    "FORMAT_VERSION",
    "ChunkBuilder",
    "ChunkInfo",
    "FormatError",
    "Manifest",
    "SealedChunk",
    "Tampered",
    "Truncated",
    "UnknownFormatVersion",
    "WrongKey",
    "canonical",
    "derive_org_key",
    "key_id",
    "manifest_digest",
    "new_data_key",
    "object_digest",
    "open_chunk",
    "open_manifest",
    "org_keys",
    "read_header",
    "seal_manifest",
    "unwrap_key",
    "verify_chunk",
    "wrap_key",
]
