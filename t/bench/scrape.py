"""The cost of being watched: a throughput row run while a client reads the
server's --stats socket and its --metrics endpoint once a second, as a
monitoring agent and a Prometheus scraper would."""

from __future__ import annotations

import re
import socket
import threading

from common import measure_wrk, start_spindle

STATS_RE = re.compile(r"bound stats ([\d.]+):(\d+)")
METRICS_RE = re.compile(r"bound metrics ([\d.]+):(\d+)")
WATCHED = ["--stats", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]


def start_watched():
    return start_spindle(WATCHED)


def _read(addr, request: bytes = b"") -> int:
    with socket.create_connection(addr, timeout=5) as s:
        if request:
            s.sendall(request)
        n = 0
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return n
            n += len(chunk)


def measure_scraped(sc, st, srv) -> dict:
    text = srv.log_path.read_text(errors="replace")
    stats = STATS_RE.search(text)
    metrics = METRICS_RE.search(text)
    if not stats or not metrics:
        raise RuntimeError("the server did not report its stats and metrics addresses")
    stats_addr = (stats.group(1), int(stats.group(2)))
    metrics_addr = (metrics.group(1), int(metrics.group(2)))
    stop = threading.Event()
    done = {"scrapes": 0, "failures": 0}

    def scrape():
        while not stop.wait(1.0):
            try:
                ok = _read(stats_addr) > 0 and _read(
                    metrics_addr, b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n") > 0
                done["scrapes" if ok else "failures"] += 1
            except OSError:
                done["failures"] += 1

    t = threading.Thread(target=scrape, daemon=True)
    t.start()
    try:
        res = measure_wrk(sc, st, srv)
    finally:
        stop.set()
        t.join(10)
    res["note"] = "{} scrapes of stats + metrics{}".format(
        done["scrapes"], ", %d failed" % done["failures"] if done["failures"] else "")
    if done["failures"]:
        raise RuntimeError(res["note"])
    return res
