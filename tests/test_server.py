"""`invoiceflow serve --workers 2`: each worker listens on its own SO_REUSEPORT socket, so the kernel
spreads connections over the workers instead of the first awake worker taking them all."""

from __future__ import annotations

import os
import socket
from collections import Counter
from pathlib import Path

import pytest

from tests.servers import run_server


def _owners_of_a_burst(base: str, connections: int) -> list[int]:
    """Open `connections` keep-alive connections at once (as a load balancer's pool or a benchmark
    does), make one request on each, and return which process serves each of them."""
    host, port = base.removeprefix("http://").split(":")
    socks = [socket.create_connection((host, int(port)), timeout=10) for _ in range(connections)]
    try:
        for conn in socks:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        for conn in socks:
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
        return [_owner_of_peer_port(conn.getsockname()[1]) for conn in socks]
    finally:
        for conn in socks:
            conn.close()


def _owner_of_peer_port(peer_port: int) -> int:
    inodes: dict[str, int] = {}
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == peer_port:
                inodes[fields[9]] = remote_port
    for pid in filter(str.isdigit, os.listdir("/proc")):
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            for fd in fd_dir.iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    raise AssertionError("no process owns the server side of the connection")


@pytest.mark.slow
def test_a_burst_of_connections_spreads_over_the_workers(database_url: str, tmp_path: Path) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several workers need PostgreSQL")
    with run_server(database_url=database_url, data_dir=tmp_path, workers=2) as base:
        owners = Counter(_owners_of_a_burst(base, 32))
    # One shared socket lets the first worker to wake accept the whole burst. With a socket per worker
    # the kernel hashes each connection to one of them: fewer than 4 of 32 on one side has odds of ~1e-6.
    assert len(owners) == 2, owners
    assert min(owners.values()) >= 4, owners
