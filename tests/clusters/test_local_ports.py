"""Local clusters' ports never lie in the kernel's ephemeral range (where any outgoing
connection can take a port between the allocation and the component's bind), and a cluster's
block stays its own while it is stopped. No cluster is started here."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from clusters.local import ports
from clusters.local.errors import HostLimitReached
from clusters.local.runtime import LocalRuntime


def _proc_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def _record(runtime: LocalRuntime, name: str, block: dict[str, int]) -> None:
    """What _write_config records for a cluster (only the options matter for ports)."""
    path = runtime.root / "configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"kind": "KwokctlConfiguration", "options": block}))


def test_the_ephemeral_range_is_read_from_proc() -> None:
    assert ports.ephemeral_range() == _proc_range()


def test_no_allocated_port_is_in_the_ephemeral_range(tmp_path: Path) -> None:
    low, high = _proc_range()
    runtime = LocalRuntime(root=tmp_path)
    seen: set[int] = set()
    for i in range(40):
        block = runtime._allocate_ports()
        assert set(block) == set(ports.PORT_FIELDS)
        values = set(block.values())
        assert not [p for p in values if low <= p <= high], block
        assert all(p >= 1024 for p in values)
        assert not values & seen, "two clusters were given the same port"
        seen |= set(range(min(values), min(values) + ports.PORT_BLOCK))
        _record(runtime, f"c{i}", block)


def test_blocks_skip_the_range_wherever_it_lies() -> None:
    # The range above the base: blocks below it, then above it, never across it.
    starts = list(ports.candidate_blocks(10, base=20000, ephemeral=(20035, 20071)))
    assert starts[:4] == [20000, 20010, 20020, 20080]
    assert all(s + 9 < 20035 or s > 20071 for s in starts)
    # The range covering the base: the first block is the first one past it, aligned.
    assert next(ports.candidate_blocks(10, base=20000, ephemeral=(1024, 40005))) == 40010
    # The range covering everything above the base: no block, and a clear error.
    assert list(ports.candidate_blocks(10, base=20000, ephemeral=(1024, 65535))) == []
    with pytest.raises(HostLimitReached, match="outside the ephemeral range 1024-65535"):
        ports.allocate_block(ports.PORT_FIELDS, size=10, reserved=set(), ephemeral=(1024, 65535))


def test_an_existing_cluster_keeps_its_old_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Clusters made before this rule were given 34000 and up (inside the range): their recorded
    # block, spare ports included, is never handed to a new cluster.
    runtime = LocalRuntime(root=tmp_path)
    old = dict(zip(ports.PORT_FIELDS, range(34000, 34007), strict=True))
    _record(runtime, "old", old)
    reserved = runtime._reserved_ports()
    assert set(range(34000, 34010)) <= reserved
    new = ports.allocate_block(ports.PORT_FIELDS, size=10, reserved=reserved, ephemeral=(40000, 60999))
    assert 20000 <= new["kubeApiserverPort"] < 34000
    # With the base moved onto the old block, the allocation steps over it.
    monkeypatch.setenv("FLOTILLA_LOCAL_PORT_BASE", "34000")
    again = ports.allocate_block(ports.PORT_FIELDS, size=10, reserved=reserved, ephemeral=(40000, 60999))
    # The next block up, or a later one if a port of it is busy on this host (34000+ lies in the
    # usual ephemeral range, where any outgoing connection may hold one): never the old block.
    assert again["kubeApiserverPort"] >= 34010
    assert not reserved.intersection(again.values())


def test_a_port_in_use_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = LocalRuntime(root=tmp_path)
    first = runtime._allocate_ports()["kubeApiserverPort"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first + 4))  # the controller-manager's port of that block
        taken.listen()
        block = runtime._allocate_ports()
    assert block["kubeApiserverPort"] > first
    assert first + 4 not in block.values()
    monkeypatch.setenv("FLOTILLA_LOCAL_PORT_BASE", str(first + 3 * ports.PORT_BLOCK))
    assert runtime._allocate_ports()["kubeApiserverPort"] == first + 3 * ports.PORT_BLOCK
