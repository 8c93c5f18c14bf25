"""Ports of local clusters: one block per cluster, always outside the kernel's ephemeral range.

Why not let the kernel choose (bind to port 0 and read the port back)? The kernel picks such
ports from the ephemeral range, the same range it hands to every outgoing connection of the
host (a database client, an HTTP call, a kubectl). Between our probe closing the socket and the
component binding it — and for as long as a stopped cluster waits for its restart — any
outgoing connection can take the port, and the component dies with "bind: address already in
use". Ports outside that range are never given away by the kernel, only taken by a server that
binds them explicitly, which the allocation probe sees. So blocks are chosen from
FLOTILLA_LOCAL_PORT_BASE (default 20000) up, skipping the ephemeral range read from
/proc/sys/net/ipv4/ip_local_port_range wherever it lies.

Clusters created before this rule keep the block recorded in their configuration (old ones
started at 34000, inside the range): nothing here moves them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

from clusters.local.errors import HostLimitReached

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Linux's default, used when /proc cannot be read (not Linux, or a restricted sandbox).
DEFAULT_EPHEMERAL_RANGE = (32768, 60999)
DEFAULT_PORT_BASE = 20000
LOWEST_PORT = 1024
HIGHEST_PORT = 65535
# Each cluster owns a block of ports, kept while it is stopped: kwokctl's own choice of "free"
# ports would hand a stopped cluster's ports to the next new one, and its restart would fail.
# The block's last ports are spare: a component whose port was taken moves there.
PORT_FIELDS = (
    "kubeApiserverPort",
    "etcdPort",
    "etcdPeerPort",
    "kwokControllerPort",
    "kubeControllerManagerPort",
    "kubeSchedulerPort",
    "metricsServerPort",
)
PORT_BLOCK = 10


def ephemeral_range(path: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The first and last port the kernel gives to outgoing connections (inclusive)."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL_RANGE
    return (low, high) if low <= high else (high, low)


def port_base() -> int:
    """Where the search for a free block starts (FLOTILLA_LOCAL_PORT_BASE)."""
    return max(LOWEST_PORT, int(os.environ.get("FLOTILLA_LOCAL_PORT_BASE", DEFAULT_PORT_BASE)))


def candidate_blocks(size: int, *, base: int, ephemeral: tuple[int, int]) -> Iterator[int]:
    """First ports of the blocks of `size` ports from `base` up that lie wholly outside `ephemeral`.

    Blocks are aligned on `base` so that a block's spare ports never overlap the next block.
    """
    low, high = ephemeral
    start = base
    while start + size - 1 <= HIGHEST_PORT:
        end = start + size - 1
        if end < low or start > high:
            yield start
            start += size
        else:
            # Jump past the range, staying aligned on `base`.
            start += size * (1 + (high - start) // size)


def port_free(port: int) -> bool:
    """Whether a server could bind 127.0.0.1:`port` now.

    With SO_REUSEADDR, as the components' (Go) listeners bind: a port left in TIME_WAIT by a
    component that was just killed is free for its restart, one held by a listener is not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def allocate_block(
    fields: tuple[str, ...], *, size: int, reserved: set[int], ephemeral: tuple[int, int] | None = None
) -> dict[str, int]:
    """A free block for a new cluster: `fields` mapped to its first ports, the rest kept spare.

    `reserved` holds every port of other clusters' blocks, running or stopped; `ephemeral` is
    the kernel's range (read from /proc when not given).
    """
    ephemeral = ephemeral or ephemeral_range()
    for block in candidate_blocks(size, base=port_base(), ephemeral=ephemeral):
        ports = range(block, block + size)
        if not reserved.intersection(ports) and all(port_free(p) for p in ports):
            return dict(zip(fields, ports, strict=False))
    raise HostLimitReached(
        f"no free block of {size} ports is left for another local cluster between "
        f"FLOTILLA_LOCAL_PORT_BASE ({port_base()}) and {HIGHEST_PORT}, outside the ephemeral range "
        f"{ephemeral[0]}-{ephemeral[1]}"
    )


def spare_ports(block: dict[str, int], *, size: int) -> list[int]:
    """The ports of a cluster's block that no component uses (where a component can move)."""
    first = min(block.values())
    used = set(block.values())
    return [p for p in range(first, first + size) if p not in used]
