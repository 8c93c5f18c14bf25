"""Fixtures of the cloud provider tests: the EC2 emulator (moto) and drivers pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.test import override_settings

from clusters.providers.cloud import Ec2Driver
from tests.clusters.cloud.moto_harness import Ec2Emulator


@pytest.fixture
def private_endpoints() -> Iterator[None]:
    """Allow provider endpoints on loopback (emulators), as an operator would for a lab."""
    with override_settings(FLOTILLA_CLOUD_PRIVATE_ENDPOINTS=True):
        yield


@pytest.fixture(scope="session")
def ec2_emulator() -> Iterator[Ec2Emulator]:
    """moto in server mode on loopback, behind its AWS-shaped proxy (one per session)."""
    emulator = Ec2Emulator().start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def stock_ami(ec2_emulator: Ec2Emulator) -> str:
    return ec2_emulator.stock_ami()


@dataclass
class Ec2Account:
    """An EC2 provider account pointed at the emulator."""

    emulator: Ec2Emulator
    image: str

    def credentials(self, *, secret: str | None = None, key: str | None = None) -> dict[str, str]:
        return {
            "access_key_id": key or self.emulator.access_key,
            "secret_access_key": secret or self.emulator.secret_key,
        }

    def settings(self, **extra: object) -> dict[str, object]:
        return {"region": "us-east-1", "endpoint": self.emulator.endpoint, "image": self.image, **extra}

    def driver(self, **extra: object) -> Ec2Driver:
        return Ec2Driver(self.credentials(), self.settings(**extra))


@pytest.fixture
def ec2(ec2_emulator: Ec2Emulator, stock_ami: str, private_endpoints: None) -> Ec2Account:
    """A clean emulator (moto reset) and an account for it."""
    ec2_emulator.reset()
    return Ec2Account(ec2_emulator, stock_ami)
