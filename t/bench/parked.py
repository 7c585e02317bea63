"""Parked memory: how much a worker grows per request parked in a long sleep.

The benchmark process itself opens the connections (non-blocking sockets and
a selector), each sending one `GET /?s=SLEEP`, in batches, and waits until
the app's shared counter (apps/_parked.py, a file named by BENCH_PARKED_FILE)
says they are all asleep. The worker's VmRSS is read first from the plain
worker, as it started with the same --async and before any request (a server
that makes every async core at start pays for them there), then, after a
short wrk warm-up, once every request is parked; the growth divided by the
number parked is the cost of one parked request (its suspended context,
connection and request state, the app's frames).

measure_cores() is the socketless variant: apps/park_cores.py parks N cores in
spindle.sleep from the worker's loop, and the growth per core and the time to
park them all are read the same way.
"""

from __future__ import annotations

import errno
import resource
import selectors
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional

from common import HOST, Running, Scenario, Settings, http_get, pinned

PARKED = 10_000        # requests parked at once
SLEEP_S = 20           # how long each one sleeps
BATCH = 500            # connections opened before waiting for the app to park them
BATCH_WAIT_S = 10.0    # longest wait for one batch
SETTLE_S = 0.5         # quiet time before each RSS reading


def vm_rss_kib(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def workers_rss_kib(srv: Running) -> Optional[int]:
    values = [vm_rss_kib(p) for p in srv.worker_pids]
    return None if any(v is None for v in values) else sum(values)


def with_counter(start: Callable) -> Callable:
    """Wraps a starter: a fresh counter file for this run, named in the app's environment."""
    def wrapped(sc: Scenario, st: Settings, log_path: Path) -> Running:
        path = st.workdir / (sc.name.replace("/", "_") + ".parked")
        path.write_bytes(b"\0" * 8)
        sc.env = {**sc.env, "BENCH_PARKED_FILE": str(path)}
        srv = start(sc, st, log_path)
        srv.extra["counter"] = path
        return srv
    return wrapped


def read_counter(path: Path) -> int:
    with open(path, "rb") as f:
        return struct.unpack("q", f.read(8))[0]


def warm_up(st: Settings, port: int) -> None:
    """Short sleeps from 50 connections: the app, the loop and the allocator all run once."""
    if st.warmup <= 0:
        return
    subprocess.run(pinned(st.client_cpu, ["wrk", "-t1", "-c50", f"-d{st.warmup}s",
                                          f"http://{HOST}:{port}/?s=0.01"]),
                   capture_output=True, timeout=st.warmup + 60)


class Clients:
    """Many non-blocking client connections, each sending one request."""

    def __init__(self, port: int, request: bytes):
        self.port, self.request = port, request
        self.sel = selectors.DefaultSelector()
        self.socks: list[socket.socket] = []
        self.sent = 0
        self.failed = 0
        self.closed_early = 0
        self.early_sample = b""  # the first thing an early answer said

    def open(self, n: int) -> None:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            self.socks.append(s)
            err = s.connect_ex((HOST, self.port))
            if err not in (0, errno.EINPROGRESS):
                self.failed += 1
                continue
            self.sel.register(s, selectors.EVENT_WRITE, "connect")

    def pump(self, timeout: float) -> None:
        """Finishes connects and sends requests; notices answers or closes (too early)."""
        for key, _ in self.sel.select(timeout):
            s = key.fileobj
            if key.data == "connect":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self.failed += 1
                    self.sel.unregister(s)
                    continue
                try:
                    s.send(self.request)
                    self.sent += 1
                    self.sel.modify(s, selectors.EVENT_READ, "sent")
                except OSError:
                    self.failed += 1
                    self.sel.unregister(s)
            else:
                self.closed_early += 1
                self.sel.unregister(s)
                if not self.early_sample:
                    try:
                        self.early_sample = s.recv(200) or b"(closed)"
                    except OSError as e:
                        self.early_sample = f"({e.strerror})".encode()

    def waiting(self) -> int:
        """Requests that should be parked now."""
        return len(self.socks) - self.failed - self.closed_early

    def close(self) -> None:
        self.sel.close()
        for s in self.socks:
            s.close()
        self.socks.clear()


def fd_budget(margin: int = 100) -> int:
    """Connections this process (and a server with the same limit) can hold at once."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] - margin


def measure_parked(sc: Scenario, st: Settings, srv: Running, count: int = PARKED) -> dict:
    counter = srv.extra["counter"]
    time.sleep(SETTLE_S)
    before = workers_rss_kib(srv)  # the plain worker, before any request
    warm_up(st, srv.port)
    res = {"rss_before_kib": before, "target_parked": count}
    clients = Clients(srv.port, f"GET /?s={SLEEP_S} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    t0 = time.monotonic()
    # Every request must be parked well before the first one wakes.
    deadline = t0 + SLEEP_S * 0.6
    try:
        while len(clients.socks) < count and time.monotonic() < deadline:
            clients.open(min(BATCH, count - len(clients.socks)))
            batch_end = min(deadline, time.monotonic() + BATCH_WAIT_S)
            while time.monotonic() < batch_end:
                clients.pump(0.01)
                if read_counter(counter) >= clients.waiting():
                    break
        res["park_s"] = time.monotonic() - t0
        time.sleep(SETTLE_S)
        parked = read_counter(counter)
        after = workers_rss_kib(srv)
        res.update(parked=parked, rss_parked_kib=after, connect_failed=clients.failed,
                   answered_early=clients.closed_early)
        if before is not None and after is not None and parked > 0:
            res["kib_per_parked"] = (after - before) / parked
        notes = []
        if parked < count:
            notes.append(f"only {parked:,} of {count:,} parked")
        if clients.early_sample:
            first = clients.early_sample.decode("latin-1").splitlines()[0][:60]
            notes.append(f"first early answer: {first!r}")
        emfile = srv.log_path.read_text(errors="replace").count("[Errno 24]")
        if emfile:
            notes.append(f"server log: {emfile:,} × EMFILE (descriptor limit "
                         f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]:,})")
        if notes:
            res["note"] = "; ".join(notes)
    finally:
        clients.close()
    return res


def measure_fd_limit(sc: Scenario, st: Settings, srv: Running) -> dict:
    """As many parked connections as the descriptor limit allows (both ends
    run under the same limit)."""
    return measure_parked(sc, st, srv, fd_budget())


CORES = 100_000
CORES_SLEEP_S = 120


def vm_pte_kib(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmPTE:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def measure_cores(sc: Scenario, st: Settings, srv: Running, count: int = CORES) -> dict:
    """count cores parked in spindle.sleep by apps/park_cores.py, no sockets."""
    counter = srv.extra["counter"]
    time.sleep(SETTLE_S)
    pid = srv.worker_pids[0]
    before, pte0 = vm_rss_kib(pid), vm_pte_kib(pid)
    res = {"rss_before_kib": before, "target_parked": count}
    t0 = time.monotonic()
    http_get(srv.port, f"/park?n={count}&s={CORES_SLEEP_S}", timeout=30)
    deadline = t0 + CORES_SLEEP_S * 0.6
    while read_counter(counter) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    res["park_s"] = time.monotonic() - t0
    time.sleep(SETTLE_S)
    parked = read_counter(counter)
    after, pte1 = vm_rss_kib(pid), vm_pte_kib(pid)
    res.update(parked=parked, rss_parked_kib=after)
    if before and after and parked:
        res["kib_per_parked"] = (after - before) / parked
    notes = []
    if pte0 is not None and pte1 is not None and parked:
        notes.append(f"page tables (not in RSS) {(pte1 - pte0) / parked:.2f} KiB per core")
    try:
        with open(f"/proc/{pid}/maps") as f:
            notes.append(f"{sum(1 for _ in f):,} memory mappings")
    except OSError:
        pass
    if parked < count:
        notes.append(f"only {parked:,} of {count:,} parked")
    res["note"] = "; ".join(notes)
    return res
