"""The snapshot format: round trips, and every way stored bytes can be wrong is caught and named."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from snapshots.format import (
    FORMAT_VERSION,
    ChunkBuilder,
    ChunkInfo,
    FormatError,
    Manifest,
    SealedChunk,
    Tampered,
    Truncated,
    UnknownFormatVersion,
    WrongKey,
    canonical,
    derive_org_key,
    manifest_digest,
    new_data_key,
    object_digest,
    open_chunk,
    open_manifest,
    org_keys,
    read_header,
    seal_manifest,
    unwrap_key,
    wrap_key,
)

SNAPSHOT = "6f1c2a9e-0000-4000-8000-000000000001"
OTHER_SNAPSHOT = "6f1c2a9e-0000-4000-8000-000000000002"
SECRET_VALUE = "hunter2-correct-horse-battery-staple"
KEYRING_OLD = base64.urlsafe_b64encode(b"o" * 32).decode()
KEYRING_NEW = base64.urlsafe_b64encode(b"n" * 32).decode()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _corpus() -> dict[tuple[str, str, bool], list[dict[str, Any]]]:
    """A few objects of several kinds, grouped as the snapshot job groups them."""
    return {
        ("v1", "ConfigMap", True): [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"cm-{i}", "namespace": "shop", "labels": {"app": "web"}},
                "data": {"index": str(i), "text": "ünïcødé ✓ \n newline", "blob": "x" * (i * 37)},
            }
            for i in range(40)
        ],
        ("v1", "Secret", True): [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {"name": "db", "namespace": "shop"},
                "data": {"password": _b64(SECRET_VALUE)},
                "immutable": True,
            }
        ],
        ("apps/v1", "Deployment", True): [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop", "uid": "d-1"},
                "spec": {
                    "replicas": 3,
                    "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}},
                },
            }
        ],
        ("apps/v1", "ReplicaSet", True): [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": "web-1",
                    "namespace": "shop",
                    "ownerReferences": [
                        {"kind": "Deployment", "name": "web", "uid": "d-1", "controller": True}
                    ],
                },
                "spec": {"replicas": 3, "ratio": 0.25, "nothing": None, "flags": [True, False]},
            }
        ],
        ("v1", "Namespace", False): [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}],
        ("example.com/v1alpha1", "Widget", True): [
            {"apiVersion": "example.com/v1alpha1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
        ],
    }


def _seal_all(data_key: bytes, target_bytes: int = 1024) -> tuple[list[SealedChunk], ChunkBuilder]:
    sealed: list[SealedChunk] = []
    builders = []
    for index, ((api_version, kind, namespaced), objects) in enumerate(_corpus().items()):
        builder = ChunkBuilder(
            SNAPSHOT,
            data_key,
            api_version=api_version,
            kind=kind,
            namespaced=namespaced,
            prefix=f"{index:04d}",
            target_bytes=target_bytes,
        )
        for obj in objects:
            chunk = builder.add(obj)
            if chunk is not None:
                sealed.append(chunk)
        last = builder.flush()
        if last is not None:
            sealed.append(last)
        assert builder.flush() is None
        builders.append(builder)
    return sealed, builders[3]


def _manifest(chunks: list[ChunkInfo], snapshot_id: str = SNAPSHOT) -> Manifest:
    kinds: dict[str, int] = {}
    for chunk in chunks:
        name = f"{chunk.api_version}/{chunk.kind}"
        kinds[name] = kinds.get(name, 0) + chunk.count
    return Manifest(
        snapshot_id=snapshot_id,
        created_at="2026-12-02T12:00:00+00:00",
        cluster={
            "name": "prod",
            "kubernetes_version": "1.33.1",
            "provider": "local",
            "region": "",
            "node_pools": [{"name": "default", "size": "small", "count": 2, "labels": {}, "taints": []}],
        },
        selection={"include_namespaces": ["shop"]},
        chunks=chunks,
        kinds=kinds,
        object_count=sum(chunk.count for chunk in chunks),
        raw_bytes=sum(chunk.raw_bytes for chunk in chunks),
        stored_bytes=sum(chunk.stored_bytes for chunk in chunks),
        owner_uids=["d-1"],
        conditions=[{"type": "Consistent", "status": "True", "reason": "Listed", "message": ""}],
        resources=[
            {
                "api_version": "v1",
                "kind": "ConfigMap",
                "plural": "configmaps",
                "namespaced": True,
                "count": 40,
            }
        ],
    )


@pytest.fixture
def org_key() -> bytes:
    return derive_org_key(b"k" * 32, "org_acme")


def _sealed_manifest(org_key: bytes, snapshot_id: str = SNAPSHOT) -> tuple[bytes, bytes, list[SealedChunk]]:
    data_key = new_data_key()
    sealed, _ = _seal_all(data_key)
    envelope = wrap_key(data_key, org_key, snapshot_id=snapshot_id)
    stored = seal_manifest(_manifest([chunk.info for chunk in sealed], snapshot_id), data_key, envelope)
    return stored, data_key, sealed


def test_round_trip_of_many_kinds_in_several_chunks(org_key: bytes) -> None:
    stored, _, sealed = _sealed_manifest(org_key)
    manifest, data_key = open_manifest(stored, [org_key], snapshot_id=SNAPSHOT)

    assert manifest.format_version == FORMAT_VERSION
    assert manifest.cluster["node_pools"][0]["count"] == 2
    assert [chunk.info for chunk in sealed] == manifest.chunks
    by_name = {chunk.info.name: chunk.data for chunk in sealed}
    read: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}
    for info in manifest.chunks:
        key = (info.api_version, info.kind, info.namespaced)
        read.setdefault(key, []).extend(open_chunk(SNAPSHOT, data_key, info, by_name[info.name]))
    assert read == _corpus()
    configmap_chunks = [info for info in manifest.chunks if info.kind == "ConfigMap"]
    assert len(configmap_chunks) > 3, "1 KB chunks split the ConfigMaps"
    assert [info.name for info in configmap_chunks] == [
        f"0000-{seq:05d}" for seq in range(len(configmap_chunks))
    ]
    assert manifest.kinds["v1/ConfigMap"] == 40
    assert manifest.object_count == sum(len(objects) for objects in _corpus().values())
    assert manifest.raw_bytes == sum(len(canonical(o)) for objects in _corpus().values() for o in objects)


def test_builder_counts_and_owner_uids() -> None:
    _, replicasets = _seal_all(new_data_key())
    assert replicasets.kind == "ReplicaSet"
    assert replicasets.objects == 1
    assert replicasets.owner_uids == {"d-1"}
    assert replicasets.stored_bytes == sum(info.stored_bytes for info in replicasets.chunks)


def test_object_digest_is_of_the_canonical_json() -> None:
    left = {"b": 1, "a": {"y": "é", "x": [1, 2]}}
    right = {"a": {"x": [1, 2], "y": "é"}, "b": 1}
    assert object_digest(left) == object_digest(right)
    assert object_digest(left) != object_digest({**left, "b": 2})


def test_a_secrets_value_and_its_base64_never_reach_storage(org_key: bytes) -> None:
    stored, _, sealed = _sealed_manifest(org_key)
    blobs = [chunk.data for chunk in sealed] + [stored]
    for needle in (SECRET_VALUE.encode(), _b64(SECRET_VALUE).encode(), b"password", b"hunter2"):
        assert all(needle not in blob for blob in blobs), needle


def test_a_flipped_byte_in_a_chunk_is_tampering_named_by_the_chunk() -> None:
    data_key = new_data_key()
    sealed, _ = _seal_all(data_key)
    chunk = sealed[2]
    flipped = bytearray(chunk.data)
    flipped[len(flipped) // 2] ^= 0x01
    with pytest.raises(Tampered, match=chunk.info.name):
        open_chunk(SNAPSHOT, data_key, chunk.info, bytes(flipped))


def test_a_cut_chunk_is_truncated() -> None:
    data_key = new_data_key()
    sealed, _ = _seal_all(data_key)
    chunk = sealed[0]
    with pytest.raises(Truncated, match=chunk.info.name):
        open_chunk(SNAPSHOT, data_key, chunk.info, chunk.data[:-10])
    with pytest.raises(Truncated):
        open_chunk(SNAPSHOT, data_key, chunk.info, b"")


def test_a_chunk_stored_under_another_chunks_name_fails_authentication() -> None:
    data_key = new_data_key()
    sealed, _ = _seal_all(data_key)
    first, second = sealed[0], sealed[1]
    # The attacker also rewrote the checksum and size, so only the authenticated data can tell.
    forged = ChunkInfo(
        **{**second.info.to_dict(), "sha256": first.info.sha256, "stored_bytes": first.info.stored_bytes}
    )
    with pytest.raises(Tampered, match=f"{second.info.name}.*fails authentication"):
        open_chunk(SNAPSHOT, data_key, forged, first.data)


def test_a_chunk_of_another_snapshot_fails_authentication() -> None:
    data_key = new_data_key()
    sealed, _ = _seal_all(data_key)
    with pytest.raises(Tampered, match="fails authentication"):
        open_chunk(OTHER_SNAPSHOT, data_key, sealed[0].info, sealed[0].data)


def test_a_chunk_with_another_data_key_fails_authentication() -> None:
    sealed, _ = _seal_all(new_data_key())
    with pytest.raises(Tampered, match=sealed[0].info.name):
        open_chunk(SNAPSHOT, new_data_key(), sealed[0].info, sealed[0].data)


def test_chunk_checks_run_at_the_call_not_at_the_first_object() -> None:
    data_key = new_data_key()
    sealed, _ = _seal_all(data_key)
    objects = open_chunk(SNAPSHOT, data_key, sealed[0].info, sealed[0].data)
    assert next(objects)["kind"] == "ConfigMap"


def _hand_sealed(data_key: bytes, lines: list[bytes], *, count: int) -> tuple[ChunkInfo, bytes]:
    """A chunk written from docs/snapshot-format.md, so that its inside can be made wrong."""
    name, api_version, kind = "0009-00000", "v1", "ConfigMap"
    header = canonical(
        {
            "api_version": api_version,
            "chunk": name,
            "count": count,
            "format_version": 1,
            "kind": kind,
            "namespaced": True,
        }
    )
    plain = zlib.compress(b"\n".join([header, *lines, b""]))
    aad = "\x00".join(["flotilla-snapshot/chunk", "1", SNAPSHOT, name, api_version, kind]).encode()
    nonce = os.urandom(12)
    data = nonce + AESGCM(data_key).encrypt(nonce, plain, aad)
    info = ChunkInfo(
        name=name,
        api_version=api_version,
        kind=kind,
        namespaced=True,
        count=count,
        raw_bytes=sum(len(line) for line in lines),
        stored_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    return info, data


def _line(obj: dict[str, Any]) -> bytes:
    return object_digest(obj).encode() + b" " + canonical(obj)


def test_the_documented_chunk_layout_is_what_open_chunk_reads() -> None:
    data_key = new_data_key()
    objects = [{"kind": "ConfigMap", "metadata": {"name": f"c{i}"}} for i in range(3)]
    info, data = _hand_sealed(data_key, [_line(obj) for obj in objects], count=3)
    assert list(open_chunk(SNAPSHOT, data_key, info, data)) == objects


def test_an_object_that_does_not_match_its_digest_is_tampering_named_by_position() -> None:
    data_key = new_data_key()
    lines = [_line({"metadata": {"name": f"c{i}"}}) for i in range(3)]
    lines[1] = lines[1].replace(b"c1", b"cX")
    info, data = _hand_sealed(data_key, lines, count=3)
    with pytest.raises(Tampered, match=r"0009-00000.*object #1 does not match its SHA-256"):
        open_chunk(SNAPSHOT, data_key, info, data)


def test_a_chunk_holding_fewer_objects_than_listed_is_refused() -> None:
    data_key = new_data_key()
    info, data = _hand_sealed(data_key, [_line({"a": 1})], count=2)
    with pytest.raises(Tampered, match="holds 1 objects, the manifest lists 2"):
        open_chunk(SNAPSHOT, data_key, info, data)


def test_an_object_larger_than_the_target_makes_a_chunk_of_its_own() -> None:
    data_key = new_data_key()
    builder = ChunkBuilder(
        SNAPSHOT,
        data_key,
        api_version="v1",
        kind="ConfigMap",
        namespaced=True,
        prefix="0001",
        target_bytes=64 << 10,
    )
    small = {"metadata": {"name": "small"}}
    big = {"metadata": {"name": "big"}, "data": {"blob": "b" * (900 << 10)}}
    assert builder.add(small) is None
    sealed = builder.add(big)
    assert sealed is not None and sealed.info.count == 2
    assert builder.add(small) is None
    last = builder.flush()
    assert last is not None and last.info.name == "0001-00001" and last.info.count == 1
    assert sealed.info.stored_bytes < sealed.info.raw_bytes // 10, "the big object is compressed"
    assert list(open_chunk(SNAPSHOT, data_key, sealed.info, sealed.data)) == [small, big]
    assert builder.objects == 3 and builder.raw_bytes == 2 * len(canonical(small)) + len(canonical(big))


def test_bytes_that_are_not_a_manifest_are_a_format_error() -> None:
    with pytest.raises(FormatError, match="not a Flotilla snapshot manifest"):
        read_header(b"PK\x03\x04" + b"\x00" * 100 + b"\n")
    with pytest.raises(FormatError, match="not a Flotilla snapshot manifest"):
        read_header(b'{"format": "velero"}\n')


def test_a_manifest_survives_its_dict_form(org_key: bytes) -> None:
    manifest = _manifest([ChunkInfo("0000-00000", "v1", "ConfigMap", True, 1, 10, 50, "ab" * 32)])
    assert Manifest.from_dict(json.loads(json.dumps(manifest.to_dict()))) == manifest
    with pytest.raises(FormatError, match="malformed"):
        Manifest.from_dict({k: v for k, v in manifest.to_dict().items() if k != "chunks"})


def test_a_wrong_org_key_is_wrong_key(org_key: bytes) -> None:
    stored, _, _ = _sealed_manifest(org_key)
    with pytest.raises(WrongKey, match="cannot be opened with this organisation's keys"):
        open_manifest(stored, [derive_org_key(b"z" * 32, "org_acme")], snapshot_id=SNAPSHOT)


def test_another_orgs_key_from_the_same_keyring_is_wrong_key(org_key: bytes) -> None:
    stored, _, _ = _sealed_manifest(org_key)
    other_org = derive_org_key(b"k" * 32, "org_globex")
    assert other_org != org_key
    with pytest.raises(WrongKey):
        open_manifest(stored, [other_org], snapshot_id=SNAPSHOT)


def test_an_envelope_copied_to_another_snapshot_does_not_open(org_key: bytes) -> None:
    data_key = new_data_key()
    envelope = wrap_key(data_key, org_key, snapshot_id=SNAPSHOT)
    assert unwrap_key(envelope, [org_key], snapshot_id=SNAPSHOT) == data_key
    with pytest.raises(WrongKey):
        unwrap_key(envelope, [org_key], snapshot_id=OTHER_SNAPSHOT)
    # A whole manifest written for the other snapshot, but with this snapshot's envelope.
    stored = seal_manifest(_manifest([], OTHER_SNAPSHOT), data_key, envelope)
    with pytest.raises(WrongKey):
        open_manifest(stored, [org_key], snapshot_id=OTHER_SNAPSHOT)


def test_a_manifest_stored_under_another_snapshot_is_refused(org_key: bytes) -> None:
    stored, _, _ = _sealed_manifest(org_key)
    with pytest.raises(Tampered, match=f"belongs to snapshot {SNAPSHOT}"):
        open_manifest(stored, [org_key], snapshot_id=OTHER_SNAPSHOT)


def test_an_unknown_format_version_is_refused_before_any_decryption(org_key: bytes) -> None:
    stored, _, _ = _sealed_manifest(org_key)
    line, body = stored.split(b"\n", 1)
    header = json.loads(line)
    header["format_version"] = 99
    header["key"] = {"alg": "something-newer"}
    future = json.dumps(header).encode() + b"\n" + body
    with pytest.raises(UnknownFormatVersion, match="format version 99"):
        read_header(future)
    # No key at all: had it tried to decrypt, it would have failed with WrongKey instead.
    with pytest.raises(UnknownFormatVersion):
        open_manifest(future, [], snapshot_id=SNAPSHOT)


@pytest.mark.parametrize("where", ["header", "body"])
def test_a_tampered_manifest_is_detected(org_key: bytes, where: str) -> None:
    stored, _, _ = _sealed_manifest(org_key)
    line, body = stored.split(b"\n", 1)
    if where == "header":
        header = json.loads(line)
        # Every key is tried whatever the envelope names, so only the header's authentication sees this.
        header["key"]["key_id"] = "0" * 16
        altered = canonical(header) + b"\n" + body
    else:
        flipped = bytearray(body)
        flipped[-20] ^= 0x80
        altered = line + b"\n" + bytes(flipped)
    assert altered != stored
    with pytest.raises(Tampered, match="manifest"):
        open_manifest(altered, [org_key], snapshot_id=SNAPSHOT)


def test_a_cut_manifest_is_truncated(org_key: bytes) -> None:
    stored, _, _ = _sealed_manifest(org_key)
    with pytest.raises(Truncated, match="manifest"):
        open_manifest(stored[:-1], [org_key], snapshot_id=SNAPSHOT)
    with pytest.raises(Truncated, match="manifest"):
        open_manifest(stored[:40], [org_key], snapshot_id=SNAPSHOT)


def test_manifest_digest_is_of_the_stored_bytes(org_key: bytes) -> None:
    stored, _, _ = _sealed_manifest(org_key)
    assert manifest_digest(stored) == manifest_digest(bytes(stored))
    assert manifest_digest(stored) != manifest_digest(stored[:-1])
    assert len(manifest_digest(stored)) == 64


def test_org_keys_follow_the_keyring_newest_first(settings: Any) -> None:
    settings.FLOTILLA_ENCRYPTION_KEYS = [KEYRING_NEW, KEYRING_OLD]
    keys = org_keys("org_acme")
    assert keys == [derive_org_key(b"n" * 32, "org_acme"), derive_org_key(b"o" * 32, "org_acme")]
    assert org_keys("org_globex")[0] != keys[0]
    assert all(len(key) == 32 for key in keys)


def test_key_rotation_keeps_old_snapshots_readable(settings: Any) -> None:
    settings.FLOTILLA_ENCRYPTION_KEYS = [KEYRING_OLD]
    stored, _, _ = _sealed_manifest(org_keys("org_acme")[0])

    settings.FLOTILLA_ENCRYPTION_KEYS = [KEYRING_NEW, KEYRING_OLD]
    manifest, _ = open_manifest(stored, org_keys("org_acme"), snapshot_id=SNAPSHOT)
    assert manifest.snapshot_id == SNAPSHOT
    newer, _, _ = _sealed_manifest(org_keys("org_acme")[0])
    assert read_header(newer)["key"]["key_id"] != read_header(stored)["key"]["key_id"]

    settings.FLOTILLA_ENCRYPTION_KEYS = [KEYRING_NEW]
    with pytest.raises(WrongKey):
        open_manifest(stored, org_keys("org_acme"), snapshot_id=SNAPSHOT)


@pytest.mark.parametrize(
    "keyring", [[], ["not base64 at all!"], [base64.urlsafe_b64encode(b"short").decode()]]
)
def test_a_bad_keyring_is_a_configuration_error(settings: Any, keyring: list[str]) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.FLOTILLA_ENCRYPTION_KEYS = keyring
    with pytest.raises(ImproperlyConfigured, match="FLOTILLA_ENCRYPTION_KEYS"):
        org_keys("org_acme")
