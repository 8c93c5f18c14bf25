"""Storage locations: the local directory and moto's S3 through libcloud's real S3 driver."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from snapshots.storage import (
    ObjectMissing,
    StorageRefused,
    StorageUnavailable,
    Store,
    StoreConfig,
    check_store,
    local_root,
    open_store,
)
from tests.snapshots.moto_s3 import BUCKET, S3Emulator, free_port

MIB = 1 << 20


@pytest.fixture
def snapshot_dir(settings: Any, tmp_path: Path) -> Path:
    settings.FLOTILLA_SNAPSHOT_DIR = str(tmp_path / "snapshots")
    return tmp_path / "snapshots"


@pytest.fixture
def s3(s3_server: S3Emulator, settings: Any) -> Iterator[S3Emulator]:
    """The session's moto, admitted by the outbound policy as an operator would, and emptied after."""
    settings.FLOTILLA_OUTBOUND_ALLOW = [f"127.0.0.1:{s3_server.port}"]
    yield s3_server
    s3_server.empty_bucket()


def s3_config(server: S3Emulator, schema: str = "org_a", **changes: Any) -> StoreConfig:
    values: dict[str, Any] = {
        "kind": "s3",
        "schema_name": schema,
        "bucket": BUCKET,
        "endpoint": server.url,
        "region": server.region,
        "prefix": "flotilla",
        "key": server.access_key,
        "secret": server.secret_key,
    }
    values.update(changes)
    return StoreConfig(**values)


def local_config(schema: str = "org_a") -> StoreConfig:
    return StoreConfig(kind="local", schema_name=schema)


def exercise(store: Store) -> None:
    """put / get / exists / keys / delete / delete_prefix, as the snapshot jobs use them."""
    big = os.urandom(3 * MIB + 17)
    store.put("snapshots/u1/manifest", b"manifest-1")
    store.put("snapshots/u1/chunks/000001", big)
    store.put("snapshots/u1/chunks/000002", b"")
    store.put("snapshots/u2/manifest", b"manifest-2")
    assert store.get("snapshots/u1/chunks/000001") == big
    assert store.get("snapshots/u1/chunks/000002") == b""
    store.put("snapshots/u1/manifest", b"manifest-1 again")
    assert store.get("snapshots/u1/manifest") == b"manifest-1 again"
    assert store.exists("snapshots/u1/manifest")
    assert not store.exists("snapshots/u1/nothing")
    assert not store.exists("snapshots/u1")
    assert sorted(store.keys("snapshots/u1/")) == [
        "snapshots/u1/chunks/000001",
        "snapshots/u1/chunks/000002",
        "snapshots/u1/manifest",
    ]
    assert sorted(store.keys("")) == sorted([*store.keys("snapshots/u1/"), "snapshots/u2/manifest"])
    with pytest.raises(ObjectMissing) as missing:
        store.get("snapshots/u1/chunks/000009")
    assert missing.value.retryable is False
    assert "snapshots/u1/chunks/000009" in missing.value.message
    store.delete("snapshots/u2/manifest")
    store.delete("snapshots/u2/manifest")  # missing is fine
    assert list(store.keys("snapshots/u2/")) == []
    assert store.delete_prefix("snapshots/u1/") == 3
    assert list(store.keys("")) == []
    assert store.delete_prefix("snapshots/u1/") == 0


def test_local_store_round_trip(snapshot_dir: Path) -> None:
    store = open_store(local_config())
    exercise(store)
    root = local_root("org_a")
    assert root == snapshot_dir / "org_a"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    store.put("snapshots/u3/manifest", b"kept")
    assert (root / "snapshots" / "snapshots" / "u3" / "manifest").read_bytes() == b"kept"
    # Atomic writes leave nothing behind them.
    assert list((root / ".incoming").iterdir()) == []
    assert store.describe == "local:org_a"


def test_s3_store_round_trip(s3: S3Emulator) -> None:
    store = open_store(s3_config(s3))
    assert store.describe == f"s3://{BUCKET}/flotilla/org_a"
    exercise(store)
    store.put("snapshots/u3/manifest", b"kept")
    # The org's schema is in every key as S3 stores it.
    assert s3.object_names() == ["flotilla/org_a/snapshots/u3/manifest"]


def test_any_libcloud_driver_by_name(s3: S3Emulator) -> None:
    """Kind `libcloud` builds the driver named (here libcloud's own `s3`) with the endpoint."""
    config = s3_config(s3, kind="libcloud", driver="s3", prefix="")
    check_store(config)
    store = open_store(config)
    store.put("snapshots/u/manifest", b"m")
    assert s3.object_names() == ["org_a/snapshots/u/manifest"]
    assert store.describe == f"s3://{BUCKET}/org_a"


def test_two_orgs_on_one_location_never_see_each_other(s3: S3Emulator, snapshot_dir: Path) -> None:
    for config_a, config_b in [
        # org_ab's keys start with org_a's name: the separator keeps them apart.
        (s3_config(s3, "org_a"), s3_config(s3, "org_ab")),
        (local_config("org_a"), local_config("org_ab")),
    ]:
        a, b = open_store(config_a), open_store(config_b)
        a.put("snapshots/same-uuid/manifest", b"A's")
        b.put("snapshots/other/manifest", b"B's")
        assert list(a.keys("")) == ["snapshots/same-uuid/manifest"]
        assert list(b.keys("")) == ["snapshots/other/manifest"]
        assert not b.exists("snapshots/same-uuid/manifest")
        with pytest.raises(ObjectMissing):
            b.get("snapshots/same-uuid/manifest")
        assert b.delete_prefix("snapshots/") == 1
        assert a.get("snapshots/same-uuid/manifest") == b"A's"


@pytest.mark.parametrize(
    "key", ["", "..", "snapshots/../org_b/x", "/snapshots/x", "snapshots//x", "a\\b", "a\x00b", "a\nb", "./a"]
)
def test_unsafe_keys_are_refused(snapshot_dir: Path, key: str) -> None:
    store = open_store(local_config())
    with pytest.raises(ValueError, match="not a safe storage key"):
        store.put(key, b"x")
    with pytest.raises(ValueError, match="not a safe storage key"):
        store.get(key)
    if key:
        with pytest.raises(ValueError, match="not a safe storage key"):
            list(store.keys(key))


@pytest.mark.parametrize("schema", ["", "../org_b", "Org", "org/b", "org_a\x00"])
def test_a_schema_that_is_not_one_is_refused(snapshot_dir: Path, schema: str) -> None:
    with pytest.raises(ValueError, match="schema"):
        open_store(local_config(schema))


@pytest.mark.parametrize("prefix", ["../up", "/abs", "a//b", "a/../b", "a\\b"])
def test_a_bad_prefix_is_refused(s3: S3Emulator, prefix: str) -> None:
    with pytest.raises(StorageRefused) as refused:
        check_store(s3_config(s3, prefix=prefix))
    assert list(refused.value.fields) == ["prefix"]


def test_check_store_accepts_a_good_location_and_leaves_nothing(s3: S3Emulator, snapshot_dir: Path) -> None:
    check_store(s3_config(s3))
    assert s3.object_names() == []
    check_store(local_config())
    assert list(open_store(local_config()).keys("")) == []


def test_check_store_refuses_a_missing_bucket(s3: S3Emulator) -> None:
    with pytest.raises(StorageRefused) as refused:
        check_store(s3_config(s3, bucket="no-such-bucket"))
    assert refused.value.fields == {"bucket": ["the bucket no-such-bucket does not exist."]}
    assert refused.value.retryable is False


@pytest.mark.parametrize("which", ["unknown key", "wrong secret"])
def test_check_store_refuses_bad_credentials(s3: S3Emulator, which: str) -> None:
    config = (
        s3_config(s3, key="AKIAUNKNOWNKEY000000", secret="not-the-secret-1234")
        if which == "unknown key"
        else s3_config(s3, secret="not-the-secret-1234")
    )
    with s3.refusing_keys(), pytest.raises(StorageRefused) as refused:
        check_store(config)
    assert list(refused.value.fields) == ["credentials"]
    message = refused.value.fields["credentials"][0]
    assert "the key was refused" in message
    assert ("InvalidAccessKeyId" if which == "unknown key" else "SignatureDoesNotMatch") in message
    for text in (refused.value.message, message, repr(config)):
        assert "not-the-secret-1234" not in text


def test_check_store_refuses_loopback_unless_the_operator_allows_it(
    s3_server: S3Emulator, settings: Any
) -> None:
    settings.FLOTILLA_OUTBOUND_ALLOW = []
    settings.FLOTILLA_CLOUD_PRIVATE_ENDPOINTS = False
    with pytest.raises(StorageRefused) as refused:
        check_store(s3_config(s3_server))
    assert list(refused.value.fields) == ["endpoint"]
    assert "loopback" in refused.value.fields["endpoint"][0]
    assert "FLOTILLA_OUTBOUND_ALLOW" in refused.value.fields["endpoint"][0]
    # The policy is enforced at run time too, not only on save.
    with pytest.raises(StorageRefused):
        open_store(s3_config(s3_server))
    settings.FLOTILLA_CLOUD_PRIVATE_ENDPOINTS = True
    check_store(s3_config(s3_server))


def test_check_store_refuses_an_endpoint_with_a_path_or_no_scheme(s3: S3Emulator) -> None:
    for endpoint in (f"{s3.url}/somewhere", f"127.0.0.1:{s3.port}", "ftp://127.0.0.1"):
        with pytest.raises(StorageRefused) as refused:
            check_store(s3_config(s3, endpoint=endpoint))
        assert list(refused.value.fields) == ["endpoint"]


def test_check_store_refuses_a_port_where_nothing_listens_quickly(settings: Any) -> None:
    port = free_port()
    settings.FLOTILLA_OUTBOUND_ALLOW = [f"127.0.0.1:{port}"]
    started = time.monotonic()
    with pytest.raises(StorageRefused) as refused:
        check_store(
            StoreConfig(
                "s3", "org_a", bucket=BUCKET, endpoint=f"http://127.0.0.1:{port}", key="k", secret="s"
            )
        )
    assert time.monotonic() - started < 5
    assert refused.value.fields == {"endpoint": ["the location could not be reached (connection refused)."]}


def test_an_s3_location_needs_credentials(s3: S3Emulator) -> None:
    with pytest.raises(StorageRefused) as refused:
        check_store(s3_config(s3, secret=""))
    assert refused.value.fields == {"credentials": ["An S3 location needs an access key and its secret."]}


def test_check_store_refuses_an_unknown_or_forbidden_driver() -> None:
    with pytest.raises(StorageRefused) as refused:
        check_store(StoreConfig("libcloud", "org_a", bucket=BUCKET, driver="no_such_cloud"))
    (message,) = refused.value.fields["driver"]
    assert "Unknown storage driver 'no_such_cloud'" in message
    assert "google_storage" in message and "azure_blobs" in message and "s3" in message
    # libcloud's local driver takes a server path as its key: a tenant never chooses one.
    assert ", local," not in message
    with pytest.raises(StorageRefused) as refused:
        check_store(StoreConfig("libcloud", "org_a", bucket=BUCKET, driver="local", key="/etc"))
    assert "Unknown storage driver 'local'" in refused.value.fields["driver"][0]


def test_options_outside_the_allow_list_are_refused() -> None:
    with pytest.raises(StorageRefused) as refused:
        check_store(
            StoreConfig("libcloud", "org_a", bucket=BUCKET, driver="s3", options={"host": "10.0.0.1"})
        )
    assert "host" in refused.value.fields["options"][0]
    with pytest.raises(StorageRefused) as refused:
        check_store(StoreConfig("local", "org_a", bucket="mine", prefix="x"))
    assert list(refused.value.fields) == ["kind"]


def test_a_location_that_goes_away_mid_way(settings: Any) -> None:
    """Stopped: connection refused (retryable); frozen: no answer within the timeout (not a hang)."""
    server = S3Emulator().start()
    try:
        settings.FLOTILLA_OUTBOUND_ALLOW = [f"127.0.0.1:{server.port}"]
        settings.FLOTILLA_STORAGE_TIMEOUT = 2
        store = open_store(s3_config(server))
        store.put("snapshots/u/chunks/1", b"one")
        server.freeze()
        started = time.monotonic()
        with pytest.raises(StorageUnavailable) as frozen:
            store.put("snapshots/u/chunks/2", os.urandom(MIB))
        assert time.monotonic() - started < 10
        assert frozen.value.retryable is True
        assert frozen.value.message == (
            f"s3://{BUCKET}/flotilla/org_a: writing snapshots/u/chunks/2: no answer within 2 s."
        )
        server.resume()
        assert store.get("snapshots/u/chunks/1") == b"one"
        server.stop()
        with pytest.raises(StorageUnavailable) as stopped:
            store.get("snapshots/u/chunks/1")
        assert not isinstance(stopped.value, ObjectMissing)
        assert stopped.value.retryable is True
        assert stopped.value.message == (
            f"s3://{BUCKET}/flotilla/org_a: reading snapshots/u/chunks/1: "
            "the location could not be reached (connection refused)."
        )
        assert server.secret_key not in stopped.value.message
    finally:
        server.stop()


def throughput(store: Store, count: int = 16, size: int = 4 * MIB) -> tuple[float, float]:
    """MiB/s of putting then getting `count` objects of `size` bytes (each read checked)."""
    blobs = [os.urandom(size) for _ in range(count)]
    started = time.perf_counter()
    for index, blob in enumerate(blobs):
        store.put(f"bench/{index:04d}", blob)
    put_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for index, blob in enumerate(blobs):
        assert store.get(f"bench/{index:04d}") == blob
    get_seconds = time.perf_counter() - started
    assert store.delete_prefix("bench/") == count
    total = count * size / MIB
    return total / put_seconds, total / get_seconds


def test_libcloud_never_follows_a_redirect() -> None:
    """A location (or anyone answering for it) cannot send Flotilla where the policy never looked."""
    import libcloud.http

    assert libcloud.http.ALLOW_REDIRECTS is False


def test_throughput_of_4_mib_objects(s3: S3Emulator, snapshot_dir: Path, capsys: Any) -> None:
    figures = {
        "local": throughput(open_store(local_config())),
        "moto s3": throughput(open_store(s3_config(s3))),
    }
    with capsys.disabled():
        for name, (put, get) in figures.items():
            print(f"\n{name}: put {put:.0f} MiB/s, get {get:.0f} MiB/s (16 x 4 MiB)")


def test_an_s3_compatible_region_name_aws_does_not_have(s3: S3Emulator) -> None:
    """A non-AWS region is signed as given at an endpoint; without an endpoint it is refused."""
    store = open_store(s3_config(s3, region="garage-1"))
    assert store.driver.region_name == "garage-1"
    store.put("snapshots/u/manifest", b"m")
    assert store.get("snapshots/u/manifest") == b"m"
    with pytest.raises(StorageRefused) as refused:
        open_store(s3_config(s3, region="garage-1", endpoint=""))
    assert list(refused.value.fields) == ["region"]
