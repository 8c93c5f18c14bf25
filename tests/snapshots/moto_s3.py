"""moto's S3 in server mode on loopback, in a process of its own, for the storage tests.

Unlike EC2 (tests/clusters/cloud/moto_harness.py), S3 needs no proxy: moto answers libcloud's
real S3 driver (path-style requests, signature version 4) as S3 does. It runs in its own process
so that a test can stop it (a location that goes away) or freeze it (one that stops answering),
and so that switching moto's authentication on for one test touches no other moto in the session.

moto does not check credentials unless its authentication is on, and with it on its own SigV4
check also refuses libcloud's correctly signed list and PUT requests: `refusing_keys()` turns it on
only around a check that must be refused, where only the refusal is looked at.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3  # type: ignore[import-untyped]
import requests

BUCKET = "flotilla-snapshots"
_ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def free_port() -> int:
    """A loopback port nothing listens on (at the time of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class S3Emulator:
    """A moto server process on loopback with one bucket and an IAM user whose key may do all."""

    region = "us-east-1"

    def __init__(self) -> None:
        self.port = 0
        self.access_key = "AKIAFLOTILLAS3TEST01"
        self.secret_key = "flotilla-s3-test-secret"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> S3Emulator:
        """Start moto (on a new port if it ran before) and create the bucket and the user."""
        self.port = free_port()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "inf"},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{self.url}/moto-api/data.json", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline or not self.running:
                    self.stop()
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        self._prepare()
        return self

    def _prepare(self) -> None:
        iam = self.client("iam")
        iam.create_user(UserName="flotilla")
        iam.put_user_policy(UserName="flotilla", PolicyName="all", PolicyDocument=json.dumps(_ALLOW_ALL))
        key = iam.create_access_key(UserName="flotilla")["AccessKey"]
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        self.client("s3").create_bucket(Bucket=BUCKET)

    def stop(self) -> None:
        """Stop the server (a location that went away: connections are refused)."""
        if self._process is not None:
            self.resume()
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def freeze(self) -> None:
        """Stop the process without closing its socket: connections open, nothing answers."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)

    def client(self, service: str) -> Any:
        """A boto3 client straight to moto, to look at what the product did."""
        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def object_names(self, prefix: str = "") -> list[str]:
        """Every key in the bucket under `prefix`, as S3 lists them."""
        pages = self.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def empty_bucket(self) -> None:
        """Remove every object (between tests)."""
        s3 = self.client("s3")
        for name in self.object_names():
            s3.delete_object(Bucket=BUCKET, Key=name)

    @contextlib.contextmanager
    def refusing_keys(self) -> Iterator[None]:
        """moto's authentication on: unknown keys and wrong secrets are refused with a 403."""
        requests.post(f"{self.url}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
        try:
            yield
        finally:
            requests.post(f"{self.url}/moto-api/reset-auth", data=b"inf", timeout=10).raise_for_status()
