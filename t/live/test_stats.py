"""Seeing inside a running server: --stats (uWSGI's stats JSON, as uwsgitop
reads it), --stats-http, --metrics (Prometheus text, read by the real
prometheus_client parser), and the dump of every core logged when a stuck
worker is killed."""

import json
import re
import signal
import socket

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from harness import RawConn, build_request, example, wait_until

STATS_RE = re.compile(r"bound stats (\S+)")
METRICS_RE = re.compile(r"bound metrics (\S+)")


def probe(spindle, *args, processes=2, extra=True):
    return spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("probe.py"),
                   "--processes", str(processes), *args, extra=extra)


def bound(srv, rx):
    m = srv.wait_for_log(rx.pattern, timeout=5)
    return m[0].group(1)


def connect(addr):
    if ":" in addr and not addr.startswith("/"):
        host, port = addr.rsplit(":", 1)
        return socket.create_connection((host, int(port)), timeout=10)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(addr)
    return s


def read_all(s):
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def raw_stats(addr, timeout=10):
    """What uwsgitop does: connect, send nothing, read to EOF, parse."""
    with connect(addr) as s:
        s.settimeout(timeout)
        return json.loads(read_all(s).decode())


def http_get(addr, path):
    with connect(addr) as s:
        s.sendall(("GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path).encode())
        data = read_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode(), body


def start_parked(srv, path, count=1):
    """Requests that stay inside the app; returns their connections."""
    conns = []
    for _ in range(count):
        c = RawConn(srv.http_addr, timeout=30)
        c.send(build_request("GET", path, [("Connection", "close")]))
        conns.append(c)
    return conns


# The fields uwsgitop 0.12 reads, with their types.
TOP_FIELDS = {"version": str, "listen_queue": int, "load": int, "pid": int, "uid": int,
              "gid": int, "cwd": str, "workers": list, "sockets": list, "locks": list}
WORKER_FIELDS = {"id": int, "pid": int, "requests": int, "exceptions": int, "status": str,
                 "rss": int, "vsz": int, "running_time": int, "last_spawn": int,
                 "respawn_count": int, "tx": int, "avg_rt": int, "harakiri_count": int,
                 "signals": int, "accepting": int, "apps": list, "cores": list}
CORE_FIELDS = {"id": int, "requests": int, "in_request": int, "write_errors": int,
               "read_errors": int, "vars": list, "req_info": dict}


def check_types(obj, fields, what):
    for k, t in fields.items():
        assert k in obj, "%s has no %r: %r" % (what, k, sorted(obj))
        assert isinstance(obj[k], t), "%s[%r] is %r, not %s" % (what, k, obj[k], t.__name__)


def test_stats_json_has_what_uwsgitop_reads(spindle):
    srv = probe(spindle, "--stats", "127.0.0.1:0", "--async", "4", extra=False)
    addr = bound(srv, STATS_RE)
    for _ in range(5):
        assert requests.get(srv.url + "/pid", timeout=10).status_code == 200
    assert requests.get(srv.url + "/nope", timeout=10).status_code == 404
    parked = start_parked(srv, "/spindle_sleep?s=8")
    try:
        def parked_core():
            d = raw_stats(addr)
            # a worker counts a request just after its client has the answer
            if sum(wk["requests"] for wk in d["workers"]) != 6:
                return None
            for w in d["workers"]:
                for c in w["cores"]:
                    if c["in_request"] and c.get("state") == "timer":
                        return d, w, c
        d, w, c = wait_until(parked_core, 15, what="a core parked on its timer")
        check_types(d, TOP_FIELDS, "stats")
        assert d["pid"] == srv.pid
        assert len(d["workers"]) == 2
        assert d["sockets"][0]["name"] == srv.http_addr
        assert w["cores"], w
        for wk in d["workers"]:
            check_types(wk, WORKER_FIELDS, "worker")
            # the cores that took a request so far (made on demand, lowest id
            # first); which worker accepted the requests is the kernel's choice
            assert len(wk["cores"]) <= 4
            assert [core["id"] for core in wk["cores"]] == list(range(len(wk["cores"])))
            for core in wk["cores"]:
                check_types(core, CORE_FIELDS, "core")
            assert wk["status"] in ("idle", "busy")
            assert wk["rss"] > 1 << 20 and wk["vsz"] >= wk["rss"]
            assert wk["respawn_count"] == 1
        assert sorted(wk["pid"] for wk in d["workers"]) == sorted(srv.worker_pids().values())
        # every request answered so far is counted once, by the worker that served it
        assert sum(wk["requests"] for wk in d["workers"]) == 6
        assert sum(core["requests"] for wk in d["workers"] for core in wk["cores"]) == 6
        assert sum(wk["tx"] for wk in d["workers"]) > 0
        # the parked request: its worker is busy, and the core says on what and since when
        assert w["status"] == "busy" and w["in_flight"] == 1
        assert c["request"] == "GET /spindle_sleep?s=8 HTTP/1.1"
        assert c["req_info"]["request_start"] > 0 and c["request_ms"] >= 0
        assert d["load"] == 1
    finally:
        for p in parked:
            p.close()


def test_raw_stats_client_that_sends_nothing_is_answered_at_once(spindle):
    # A TCP socket that defers accept() until the client speaks would hold
    # uwsgitop (which only reads) for seconds.
    srv = probe(spindle, "--stats", "127.0.0.1:0", processes=1, extra=False)
    addr = bound(srv, STATS_RE)
    for _ in range(3):
        assert raw_stats(addr, timeout=3)["pid"] == srv.pid


def test_cores_show_what_they_wait_for_and_queue(spindle):
    # One core: a second request waits for it in the queue.
    srv = probe(spindle, "--stats", "127.0.0.1:0", "--async", "1", processes=1, extra=False)
    addr = bound(srv, STATS_RE)
    parked = start_parked(srv, "/spindle_sleep?s=8", count=2)
    try:
        def queued():
            d = raw_stats(addr)
            return d if d["workers"][0]["queued"] == 1 else None
        d = wait_until(queued, 15, what="one request queued for the busy core")
        assert d["queued"] == 1
        core = d["workers"][0]["cores"][0]
        assert core["state"] == "timer" and core["in_request"] == 1
    finally:
        for p in parked:
            p.close()


def test_stats_http_on_a_unix_socket(spindle, tmp_path):
    path = str(tmp_path / "stats.sock")
    srv = probe(spindle, "--stats", path, "--stats-http", processes=1, extra=False)
    assert bound(srv, STATS_RE) == path
    requests.get(srv.url + "/pid", timeout=10)

    def counted():
        head, body = http_get(path, "/")
        assert head.startswith("HTTP/1.0 200") and "application/json" in head
        return json.loads(body)["workers"][0]["requests"] == 1
    wait_until(counted, 10, what="the request counted")
    head, body = http_get(path, "/metrics")
    assert head.startswith("HTTP/1.0 200") and "text/plain; version=0.0.4" in head
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert "spindle_requests" in names


def metrics(addr):
    host, port = addr.rsplit(":", 1)
    r = requests.get("http://%s:%s/metrics" % (host, port), timeout=10)
    assert r.status_code == 200
    fams = {f.name: f for f in text_string_to_metric_families(r.text)}
    return fams


def values(fam, **labels):
    return [s.value for s in fam.samples
            if all(s.labels.get(k) == v for k, v in labels.items())]


def test_metrics_parse_with_prometheus_client(spindle):
    srv = probe(spindle, "--metrics", "127.0.0.1:0", "--async", "4", extra=False)
    addr = bound(srv, METRICS_RE)
    for _ in range(7):
        assert requests.get(srv.url + "/pid", timeout=10).status_code == 200
    for _ in range(3):
        assert requests.get(srv.url + "/nope", timeout=10).status_code == 404
    assert requests.get(srv.url + "/error", timeout=10).status_code == 500
    parked = start_parked(srv, "/spindle_sleep?s=8", count=2)
    try:
        def settled():
            # the 500's worker counts it just after the client has its answer
            f = metrics(addr)
            parked = sum(values(f["spindle_cores"], state="timer"))
            errors = sum(values(f["spindle_requests"], code="5xx"))
            return f if parked == 2 and errors == 1 else None
        f = wait_until(settled, 15, what="two cores parked on a timer in the metrics")
        req = f["spindle_requests"]
        assert req.type == "counter"
        assert sum(values(req, code="2xx")) == 7
        assert sum(values(req, code="4xx")) == 3
        assert sum(values(req, code="5xx")) == 1
        hist = f["spindle_request_duration_seconds"]
        assert hist.type == "histogram"
        assert values(hist, le="+Inf") == [11.0]
        count = [s.value for s in hist.samples if s.name.endswith("_count")]
        assert count == [11.0]
        # buckets are cumulative
        buckets = [s.value for s in hist.samples if s.name.endswith("_bucket")]
        assert buckets == sorted(buckets)
        assert sum(values(f["spindle_requests_in_flight"])) == 2
        assert sum(values(f["spindle_connections_queued"])) == 0
        rss = values(f["spindle_worker_rss_bytes"])
        assert len(rss) == 2 and all(v > 1 << 20 for v in rss)
        assert f["spindle_listen_queue"].samples[0].labels["socket"] == srv.http_addr
        assert all(v == 0 for v in values(f["spindle_worker_restarts"]))
    finally:
        for p in parked:
            p.close()


@pytest.mark.parametrize("engine", ["--async 2", "--tornado 2", "--async 2 --greenlet"])
def test_harakiri_logs_every_core_with_its_traceback(spindle, engine):
    srv = probe(spindle, "--harakiri", "2", *engine.split(), "--metrics", "127.0.0.1:0",
                "--stats", "127.0.0.1:0", processes=1, extra=False)
    old = srv.worker_pids()[1]
    parked = start_parked(srv, "/spindle_sleep?s=30")
    wait_until(lambda: raw_stats(bound(srv, STATS_RE))["workers"][0]["in_flight"] == 1, 10,
               what="the parked request")
    stuck = start_parked(srv, "/sleep?s=30&token=hk")
    try:
        srv.wait_for_log(r"respawning \(harakiri\)", timeout=20)
        log = srv.log_text()
        line = "GET /sleep\\?s=30&token=hk HTTP/1.1"
        assert re.search(r'harakiri: worker 1 \(pid %d\) stuck [\d.]+s in "%s"' % (old, line),
                         log), log
        # the stuck core: its request, how long it ran, and where in the app it was
        assert re.search(r'core \d \(running\), request running for [\d.]+s: "%s"' % line,
                         log), log
        assert re.search(r'File ".*probe.py", line \d+ in sleep\n', log), log
        # the other core, parked on its timer, with its own traceback (a parked
        # greenlet keeps its frames where a signal handler cannot reach them)
        assert re.search(r'core \d \(parked: timer\), request running for [\d.]+s: '
                         r'"GET /spindle_sleep\?s=30 HTTP/1.1"', log), log
        if "--greenlet" in engine:
            assert "(a parked greenlet: its frames are not reachable" in log, log
        else:
            assert re.search(r'File ".*probe.py", line \d+ in spindle_sleep', log), log
        # counted by reason, and on the worker
        wait_until(lambda: srv.worker_pids()[1] != old, 20, what="the replacement worker")
        f = metrics(bound(srv, METRICS_RE))
        assert values(f["spindle_worker_restarts"], reason="harakiri") == [1.0]
        d = raw_stats(bound(srv, STATS_RE))
        assert d["respawns"]["harakiri"] == 1
        assert d["workers"][0]["harakiri_count"] == 1
        assert d["workers"][0]["respawn_count"] == 2
    finally:
        for c in parked + stuck:
            c.close()


def test_worker_killed_for_its_memory_logs_its_traceback(spindle):
    srv = probe(spindle, "--evil-reload-on-rss", "150", "--stats", "127.0.0.1:0",
                processes=1, extra=False)
    old = srv.worker_pids()[1]
    held = start_parked(srv, "/grow?mb=300&s=60")
    try:
        srv.wait_for_log(r"uses \d+ MB \(evil-reload-on-rss 150\); killing", timeout=30)
        wait_until(lambda: srv.worker_pids()[1] != old, 20, what="the replacement worker")
        log = srv.log_text()
        assert re.search(r'core \d \(running\), request running for [\d.]+s: '
                         r'"GET /grow\?mb=300&s=60 HTTP/1.1"', log), log
        assert re.search(r'File ".*probe.py", line \d+ in grow\n', log), log
        assert raw_stats(bound(srv, STATS_RE))["respawns"]["reload-on-rss"] == 1
    finally:
        for c in held:
            c.close()


def test_worker_stuck_at_stop_logs_its_traceback(spindle):
    srv = probe(spindle, "--worker-reload-mercy", "1", processes=1, extra=False)
    stuck = start_parked(srv, "/sleep?s=30&token=atstop")
    try:
        srv.wait_for_log(r"sleep start atstop", timeout=10)
        srv.signal(signal.SIGTERM)
        srv.wait_for_log(r"did not stop in time; killing", timeout=20)
        srv.wait_for_log(r'File ".*probe.py", line \d+ in sleep', timeout=10)
        assert re.search(r'core 0 \(running\), request running for [\d.]+s: '
                         r'"GET /sleep\?s=30&token=atstop HTTP/1.1"', srv.log_text())
    finally:
        for c in stuck:
            c.close()


def test_reload_keeps_the_stats_socket_and_counts(spindle, tmp_path):
    path = str(tmp_path / "stats.sock")
    srv = probe(spindle, "--stats", path, extra=False)
    before = {w["pid"] for w in raw_stats(path)["workers"]}
    assert raw_stats(path)["reloads"] == 0
    srv.signal(signal.SIGHUP)

    def reloaded():
        try:
            d = raw_stats(path)
        except (OSError, ValueError):  # the master is re-executing: the socket comes back
            return None
        pids = {w["pid"] for w in d["workers"]}
        return d if d["reloads"] == 1 and pids and not pids & before and 0 not in pids else None
    d = wait_until(reloaded, 30, what="the reloaded master's stats")
    assert d["pid"] == srv.pid
