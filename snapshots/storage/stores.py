"""One org's area of one storage location, through libcloud's storage drivers.

Every key is put under `<prefix>/<schema>/` (a local location is already the org's own
directory), every call is bounded by a timeout, and every failure becomes one of three errors
that name the location and never carry a credential.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import re
import secrets
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from libcloud.common.exceptions import BaseHTTPError
from libcloud.common.types import InvalidCredsError, LibcloudError
from libcloud.http import LibcloudConnection
from libcloud.storage.base import Container, Object
from libcloud.storage.drivers.local import LocalStorageDriver
from libcloud.storage.drivers.s3 import REGION_TO_HOST_MAP, BaseS3StorageDriver, S3StorageDriver
from libcloud.storage.providers import get_driver
from libcloud.storage.types import ContainerDoesNotExistError, ObjectDoesNotExistError

# Importing the cloud adapters' base switches libcloud's redirect following off module-wide: a
# location (or anyone answering for it) must not send Flotilla to an address the policy never saw.
from clusters.exceptions import ProviderError
from clusters.providers.clouds.base import checked_endpoint
from snapshots.storage.config import (
    LOCAL_CONTAINER,
    StoreConfig,
    check_key,
    local_root,
    storage_timeout,
    validate_config,
)
from snapshots.storage.errors import ObjectMissing, StorageRefused, StorageUnavailable

_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_CHECK_PREFIX = ".flotilla-check-"
_INCOMING = ".incoming"


class Store:
    """One org's area of one location: keys are relative ('snapshots/<uuid>/manifest').

    A store holds one libcloud connection, whose request signing keeps per-request state: each
    thread opens its own store.
    """

    def __init__(self, driver: Any, container: str, base: str, describe: str, *, bucket: str = "") -> None:
        self.driver = driver
        self.container = Container(name=container, extra={}, driver=driver)
        self.base = base.strip("/")
        self.describe = describe
        self.bucket = bucket or container

    def name_of(self, key: str) -> str:
        """The object's name in the container for a relative key (refused when unsafe)."""
        check_key(key)
        return f"{self.base}/{key}" if self.base else key

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key` in one request (replacing what was there)."""
        name = self.name_of(key)
        headers: dict[str, str] = {}
        digest = hashlib.md5(data, usedforsecurity=False)
        s3 = isinstance(self.driver, BaseS3StorageDriver)
        if s3:
            # The service checks the body against it, so a corrupted upload is refused, not kept.
            headers["Content-MD5"] = base64.b64encode(digest.digest()).decode()
        with self._failures("writing", key):
            stored = self.driver.upload_object_via_stream(
                io.BytesIO(data),
                self.container,
                name,
                extra={"content_type": "application/octet-stream"},
                headers=headers,
            )
        etag = str(getattr(stored, "hash", "") or "").strip('"')
        if s3 and etag and etag != digest.hexdigest():
            raise StorageUnavailable(f"{self.describe}: {key} was stored with a different checksum.")

    def get(self, key: str) -> bytes:
        """The whole object under `key` (ObjectMissing when it is not there)."""
        name = self.name_of(key)
        with self._failures("reading", key):
            return b"".join(self.driver.download_object_as_stream(self._object(name)))

    def delete(self, key: str) -> None:
        """Remove `key`; a key that is not there is fine."""
        name = self.name_of(key)
        with contextlib.suppress(ObjectMissing), self._failures("deleting", key):
            self.driver.delete_object(self._object(name))

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key under `prefix`; how many were removed."""
        found = list(self.keys(prefix))
        for key in found:
            self.delete(key)
        return len(found)

    def keys(self, prefix: str) -> Iterator[str]:
        """The relative keys under `prefix` (paged by the driver, in the service's order)."""
        check_key(prefix, prefix=True)
        start = f"{self.base}/" if self.base else ""
        with self._failures("listing", prefix):
            for obj in self.driver.iterate_container_objects(self.container, prefix=start + prefix):
                name = str(obj.name)
                # A service that ignores the prefix must still not show another org's keys.
                if name.startswith(start + prefix):
                    yield name[len(start) :]

    def exists(self, key: str) -> bool:
        """Whether `key` is there."""
        name = self.name_of(key)
        try:
            with self._failures("looking up", key):
                self.driver.get_object(self.container.name, name)
        except ObjectMissing:
            return False
        return True

    def check_bucket(self) -> None:
        """The bucket is there and this key may list it (first step of a check on save)."""
        with self._failures("opening the bucket"):
            self.driver.get_container(self.container.name)
        start = f"{self.base}/" if self.base else ""
        with self._failures("listing the bucket"):
            for _ in self.driver.iterate_container_objects(self.container, prefix=start + _CHECK_PREFIX):
                break

    def _object(self, name: str) -> Any:
        return Object(
            name=name, size=0, hash="", extra={}, meta_data={}, container=self.container, driver=self.driver
        )

    @contextlib.contextmanager
    def _failures(self, doing: str, key: str = "") -> Iterator[None]:
        """Every way a call can fail, as a StorageUnavailable that names the location."""
        where = f"{self.describe}: {doing}" + (f" {key}" if key else "")

        def unavailable(reason: str, field: str = "endpoint", retryable: bool = True) -> StorageUnavailable:
            return StorageUnavailable(f"{where}: {reason}", field=field, retryable=retryable, reason=reason)

        try:
            yield
        except StorageUnavailable:
            raise
        except (ObjectDoesNotExistError, FileNotFoundError) as exc:
            raise ObjectMissing(f"{self.describe}: {key or 'the object'} is not there.", key=key) from exc
        except ContainerDoesNotExistError as exc:
            raise unavailable(f"the bucket {self.bucket} does not exist.", "bucket", False) from exc
        except InvalidCredsError as exc:
            raise unavailable(f"the key was refused{_service_code(exc)}.", "credentials", False) from exc
        except requests.exceptions.SSLError as exc:
            raise unavailable(f"the TLS connection failed ({_tls_reason(exc)}).") from exc
        except requests.exceptions.Timeout as exc:
            raise unavailable(f"no answer within {storage_timeout():g} s.") from exc
        except requests.exceptions.ConnectionError as exc:
            refused = "refused" in str(exc).lower()
            raise unavailable(
                "the location could not be reached"
                + (" (connection refused)." if refused else " (the connection failed).")
            ) from exc
        except (LibcloudError, BaseHTTPError) as exc:
            raise unavailable(f"the service answered {_libcloud_reason(exc)}.") from exc
        except OSError as exc:
            raise unavailable(f"{exc.strerror or type(exc).__name__}.", "kind") from exc


class LocalStore(Store):
    """A local location: libcloud's local driver on the org's directory, with atomic writes.

    libcloud's local driver writes an object in place, so a crash mid-write would leave a
    truncated object under its final name: writes go to a file outside the container first,
    are flushed to disk, and are renamed into place.
    """

    def __init__(self, root: Path, schema_name: str) -> None:
        (root / LOCAL_CONTAINER).mkdir(exist_ok=True, mode=0o700)
        (root / _INCOMING).mkdir(exist_ok=True, mode=0o700)
        self.root = root
        # No locking: writes are atomic renames, and the driver's locks leave a file in /tmp for
        # every object they ever guarded.
        driver: Any = LocalStorageDriver(str(root), ex_use_locking=False)  # type: ignore[no-untyped-call]
        super().__init__(driver, LOCAL_CONTAINER, "", f"local:{schema_name}", bucket=LOCAL_CONTAINER)

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`: written beside, flushed, then renamed into place."""
        target = self.root / LOCAL_CONTAINER / self.name_of(key)
        with self._failures("writing", key):
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, temporary = tempfile.mkstemp(dir=self.root / _INCOMING, prefix="put-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise
            directory = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def delete(self, key: str) -> None:
        """Remove `key` (and the directories it leaves empty); missing is fine."""
        name = self.name_of(key)
        if (self.root / LOCAL_CONTAINER / name).is_file():
            with self._failures("deleting", key):
                self.driver.delete_object(self._object(name))

    def keys(self, prefix: str) -> Iterator[str]:
        """The relative keys under `prefix`.

        libcloud's local driver lists (and stats, and sorts) the whole container to filter it by
        prefix: the walk starts at the deepest directory the prefix names instead.
        """
        check_key(prefix, prefix=True)
        container = self.root / LOCAL_CONTAINER
        with self._failures("listing", prefix):
            for folder, subfolders, files in os.walk(container / prefix.rpartition("/")[0]):
                subfolders.sort()
                for name in sorted(files):
                    relative = Path(folder, name).relative_to(container).as_posix()
                    if relative.startswith(prefix):
                        yield relative

    def exists(self, key: str) -> bool:
        """Whether `key` is there (a directory of keys is not a key)."""
        return (self.root / LOCAL_CONTAINER / self.name_of(key)).is_file()

    def check_bucket(self) -> None:
        """The org's directory is there and can be listed."""
        with self._failures("opening the directory"):
            self.driver.get_container(LOCAL_CONTAINER)


class _BoundedConnection(LibcloudConnection):
    """libcloud's HTTP connection with its timeout on raw requests too.

    libcloud sends object uploads and downloads as prepared requests without the connection's
    timeout, so a location that stops answering mid-transfer would hang the caller for good.
    """

    def prepared_request(
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: Any = None,
        raw: bool = False,
        stream: bool = False,
    ) -> None:
        session: Any = self.session
        headers = self._normalize_headers(headers=headers)  # type: ignore[no-untyped-call]
        request = requests.Request(method, f"{self.host}{url}", data=body, headers=headers)
        self.response = session.send(
            session.prepare_request(request), stream=stream, verify=self.verification, timeout=session.timeout
        )


class _EndpointS3Driver(S3StorageDriver):
    """libcloud's S3 driver at an S3-compatible endpoint whose region names AWS does not have.

    The region only enters the request signature, so the driver is built for a region libcloud
    knows and signs with the service's own.
    """

    def __init__(self, key: str, secret: str, *, region: str, **kwargs: Any) -> None:
        super().__init__(key, secret, region="us-east-1", **kwargs)  # type: ignore[no-untyped-call]
        self.region_name = region


def open_store(config: StoreConfig) -> Store:
    """The org's area of the location (no call is made to it yet)."""
    validate_config(config)
    if config.kind == "local":
        return LocalStore(local_root(config.schema_name), config.schema_name)
    base = "/".join(part for part in (config.prefix.strip("/"), config.schema_name) if part)
    scheme = "s3" if config.kind == "s3" else config.driver
    describe = f"{scheme}://{config.bucket}/{base}"
    driver = _driver(config)
    driver.connection.conn_class = _BoundedConnection
    # Some drivers connect while they are built: the next call reconnects with the bounded class.
    driver.connection.connection = None
    if isinstance(driver, BaseS3StorageDriver):
        # One PUT per object: chunks are a few MiB, and a multipart upload would be three calls.
        driver.supports_s3_multipart_upload = False
    return Store(driver, config.bucket, base, describe, bucket=config.bucket)


def check_store(config: StoreConfig) -> None:
    """Check a location on save: the endpoint is allowed, the bucket is there and listable, and a
    small object can be written, read back and deleted. StorageRefused naming the field otherwise."""
    store = open_store(config)
    probe = f"{_CHECK_PREFIX}{secrets.token_hex(8)}"
    data = secrets.token_bytes(64)
    try:
        store.check_bucket()
        store.put(probe, data)
        try:
            if store.get(probe) != data:
                raise StorageUnavailable(
                    f"{store.describe}: an object read back differs from what was written."
                )
        finally:
            store.delete(probe)
    except StorageUnavailable as exc:
        raise StorageRefused(exc.message, fields={exc.field: [exc.reason]}) from exc


def _driver(config: StoreConfig) -> Any:
    endpoint = _endpoint(config)
    connection: dict[str, Any] = {"timeout": storage_timeout()}
    if endpoint is not None:
        connection.update(host=endpoint.hostname, secure=endpoint.scheme == "https")
        if endpoint.port:
            connection["port"] = endpoint.port
    try:
        if config.kind == "s3":
            region = config.region or "us-east-1"
            if region not in REGION_TO_HOST_MAP:
                if endpoint is None:
                    raise StorageRefused(
                        f"Unknown S3 region {region!r}.",
                        fields={
                            "region": ["Not an AWS region; give the endpoint of an S3-compatible service."]
                        },
                    )
                return _EndpointS3Driver(config.key, config.secret, region=region, **connection)
            driver: Any = S3StorageDriver(config.key, config.secret, region=region, **connection)  # type: ignore[no-untyped-call]
            return driver
        driver_class = get_driver(config.driver)
        if config.region:
            connection["region"] = config.region
        return driver_class(config.key, config.secret, **connection, **dict(config.options))
    except StorageRefused:
        raise
    except (LibcloudError, ValueError, TypeError) as exc:
        # Messages of a driver's constructor name its arguments, never their values.
        raise StorageRefused(
            f"The {config.driver or config.kind} driver refused the settings: {type(exc).__name__}.",
            fields={"driver" if config.kind == "libcloud" else "region": [_constructor_reason(exc)]},
        ) from exc


def _endpoint(config: StoreConfig) -> Any:
    if not config.endpoint:
        return None
    try:
        parts = checked_endpoint(config.endpoint, "endpoint", purpose="the storage endpoint")
    except ProviderError as exc:
        raise StorageRefused(exc.message, fields=exc.fields) from exc
    if parts.path.strip("/"):
        raise StorageRefused(
            "The storage endpoint must not have a path.",
            fields={
                "endpoint": ["Give https://host[:port] only; the bucket and prefix are fields of their own."]
            },
        )
    return parts


def _service_code(exc: Exception) -> str:
    found = _CODE.search(str(getattr(exc, "value", "") or exc))
    return f" ({found.group(1)})" if found else ""


def _libcloud_reason(exc: Exception) -> str:
    code = getattr(exc, "code", None)
    found = _CODE.search(str(getattr(exc, "value", "") or getattr(exc, "message", "") or exc))
    if found:
        return found.group(1)
    text = str(getattr(exc, "value", "") or getattr(exc, "message", "") or type(exc).__name__)
    return f"HTTP {code}: {text[:200]}" if isinstance(code, int) else text[:200]


def _tls_reason(exc: Exception) -> str:
    for arg in getattr(exc, "args", ()):
        inner = getattr(arg, "reason", arg)
        if isinstance(inner, ssl.SSLCertVerificationError):
            return inner.verify_message or "certificate verification failed"
    return "certificate verification or handshake failed"


def _constructor_reason(exc: Exception) -> str:
    if isinstance(exc, TypeError):
        return "The driver does not take these settings."
    return str(exc)[:200] if not isinstance(exc, LibcloudError) else str(exc.value)[:200]
