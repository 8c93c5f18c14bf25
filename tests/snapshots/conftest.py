"""Fixtures of the snapshots tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.snapshots.moto_s3 import S3Emulator


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Emulator]:
    """moto's S3 on loopback with one bucket (one per session; restarted by a test that stops it)."""
    emulator = S3Emulator().start()
    try:
        yield emulator
    finally:
        emulator.stop()
