"""Apps written for uWSGI's async mode run unmodified on the async cores:
uwsgi.async_sleep with `yield b""` or uwsgi.suspend(), uwsgi.wait_fd_read /
wait_fd_write with uwsgi.ready_fd(), uwsgi.async_connect with
uwsgi.is_connected(), @uwsgidecorators.postfork, uwsgi.post_fork_hook and
uwsgi.worker_id()."""

import json
import re
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import RawConn, build_request, example, http_request, wait_until

SLEPT_RE = re.compile(rb"^slept ([\d.]+) in worker (\d+) pid (\d+)\n$")


def get(srv, path, timeout=30.0):
    return http_request(srv.http_addr, "GET", path, timeout=timeout)


def serve(spindle, app, cores, processes=1):
    return spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("async/" + app),
                   "--processes", str(processes), "--async", str(cores))


def concurrently(fn, n):
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(fn, range(n)))


# ---------------------------------------------------------------------------
# uwsgi.async_sleep


@pytest.mark.parametrize("path", ["/", "/suspend", "/returned"])
def test_async_sleep_runs_concurrently(spindle, path):
    """`uwsgi.async_sleep(s); yield b""`, `uwsgi.async_sleep(s); uwsgi.suspend()`
    and `yield uwsgi.async_sleep(s)` (uWSGI returns b"" from it under Python 3)."""
    n = 50
    srv = serve(spindle, "uwsgi_sleep.py", n)
    workers = srv.worker_pids()
    path += "?s=0.5"
    t0 = time.monotonic()
    results = concurrently(lambda i: get(srv, path), n)
    elapsed = time.monotonic() - t0
    for r in results:
        assert r.status == 200, (r, r.body)
        m = SLEPT_RE.match(r.body)
        assert m, "unexpected body %r" % r.body
        assert float(m.group(1)) >= 0.45, r.body
        assert int(m.group(2)) == 1 and workers[1] == int(m.group(3)), (r.body, workers)
    # 50 sleeps of 0.5 s one after another would take 25 s.
    assert elapsed < 10, "50 concurrent async_sleep(0.5) took %.1fs" % elapsed


def test_async_sleep_parks_only_its_own_request(spindle):
    srv = serve(spindle, "uwsgi_sleep.py", 4)
    with RawConn(srv.http_addr, timeout=30) as long:
        long.send(build_request("GET", "/?s=3", extra=[("Connection", "close")]))
        t0 = time.monotonic()
        # short sleeps beside the long one finish long before it
        for _ in range(3):
            r = get(srv, "/?s=0.05")
            assert r.status == 200 and SLEPT_RE.match(r.body)
        assert time.monotonic() - t0 < 2.5, "the short requests waited for the long sleep"
        # the long one has not answered yet (nothing closed, nothing sent)
        assert long.is_open_after(0.01) and not long.buf, long.buf
        r = long.read_response(timeout=30)
    m = SLEPT_RE.match(r.body)
    assert m and float(m.group(1)) >= 2.9, r.body


# ---------------------------------------------------------------------------
# uwsgi.wait_fd_read / ready_fd


def send_when_waiting(srv, key, data):
    """/send answers 409 until the /wait request with that key is parked."""
    wait_until(lambda: get(srv, "/send?key=%s&data=%s" % (key, data)).status == 200, 15,
               what="the waiter for %s" % key)


@pytest.mark.parametrize("path", ["/wait", "/wait_suspend", "/wait_returned"])
def test_wait_fd_read_then_ready_fd(spindle, path):
    srv = serve(spindle, "uwsgi_fd.py", 8)
    key = uuid.uuid4().hex[:8]
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(get, srv, "%s?key=%s&timeout=20" % (path, key))
        send_when_waiting(srv, key, "hello")
        r = waiting.result(timeout=30)
    assert r.status == 200
    assert r.body == b"ready hello\n"


@pytest.mark.parametrize("path", ["/wait", "/wait_suspend", "/wait_returned"])
def test_wait_fd_read_timeout_gives_ready_fd_minus_1(spindle, path):
    srv = serve(spindle, "uwsgi_fd.py", 8)
    t0 = time.monotonic()
    r = get(srv, "%s?key=%s&timeout=1" % (path, uuid.uuid4().hex[:8]))
    elapsed = time.monotonic() - t0
    assert r.status == 200 and r.body == b"timeout\n", r.body
    assert elapsed >= 0.9, "the 1 s wait ended after %.2fs" % elapsed


def test_many_fd_waiters_woken_one_by_one(spindle):
    n = 10
    srv = serve(spindle, "uwsgi_fd.py", n + 2)
    keys = ["%s%d" % (uuid.uuid4().hex[:6], i) for i in range(n)]
    with ThreadPoolExecutor(max_workers=n) as pool:
        waiting = [pool.submit(get, srv, "/wait?key=%s&timeout=30" % k) for k in keys]
        # wake them in reverse order: each gets its own data
        for k in reversed(keys):
            send_when_waiting(srv, k, "data-" + k)
        results = [w.result(timeout=60) for w in waiting]
    for k, r in zip(keys, results):
        assert r.status == 200 and r.body == b"ready data-%s\n" % k.encode(), r.body


# ---------------------------------------------------------------------------
# uwsgi.async_connect / is_connected


class Backend:
    """A TCP server on 127.0.0.1:0 that answers "pong N" to each "ping", but
    only once `together` connections have sent theirs (so it proves the
    clients were all waiting at the same time)."""

    def __init__(self, together=1, timeout=20.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(timeout)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.together = together
        self.timeout = timeout
        self.errors = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        conns = []
        try:
            for _ in range(self.together):
                c, _ = self.sock.accept()
                c.settimeout(self.timeout)
                data = b""
                while not data.endswith(b"\n"):
                    chunk = c.recv(100)
                    if not chunk:
                        break
                    data += chunk
                if data != b"ping\n":
                    self.errors.append(data)
                conns.append(c)
            for i, c in enumerate(conns):
                c.sendall(b"pong %d\n" % i)
        except OSError as e:
            self.errors.append(repr(e))
        finally:
            for c in conns:
                c.close()

    def close(self):
        self.thread.join(self.timeout + 5)
        self.sock.close()


def test_async_connect_to_a_backend(spindle):
    srv = serve(spindle, "uwsgi_connect.py", 4)
    backend = Backend()
    try:
        r = get(srv, "/?addr=%s" % backend.addr)
    finally:
        backend.close()
    assert r.status == 200
    assert r.body == b"connected: pong 0\n"
    assert not backend.errors, backend.errors


def test_async_connects_wait_side_by_side(spindle):
    n = 6
    srv = serve(spindle, "uwsgi_connect.py", n + 2)
    backend = Backend(together=n)
    try:
        results = concurrently(lambda i: get(srv, "/?addr=%s" % backend.addr, timeout=40), n)
    finally:
        backend.close()
    assert not backend.errors, backend.errors
    bodies = sorted(r.body for r in results)
    assert bodies == sorted(b"connected: pong %d\n" % i for i in range(n)), bodies


def test_async_connect_refused_is_not_connected(spindle):
    srv = serve(spindle, "uwsgi_connect.py", 4)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    r = get(srv, "/?addr=127.0.0.1:%d" % port)
    assert r.status == 200
    assert r.body == b"not connected\n"


# ---------------------------------------------------------------------------
# postfork and worker_id


@pytest.mark.parametrize("app", ["uwsgi_postfork.py", "uwsgi_post_fork_hook.py"])
def test_postfork_runs_once_in_each_worker(spindle, app):
    srv = serve(spindle, app, 4, processes=2)
    workers = srv.worker_pids()
    assert sorted(workers) == [1, 2]
    seen = {}
    for _ in range(40):
        r = get(srv, "/")
        assert r.status == 200, r.body
        j = json.loads(r.body)
        assert workers[j["worker_id"]] == j["pid"], (j, workers)
        assert j["postfork"] == [j["pid"]], "the hook must run once, in this worker: %s" % j
        seen[j["worker_id"]] = j["pid"]
        if len(seen) == 2:
            break
    assert srv.pid not in seen.values()
