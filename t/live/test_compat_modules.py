"""uWSGI's Python API as spindle ships it: the `uwsgi` and `uwsgidecorators`
modules compiled into the binary, driven by unmodified uWSGI-style apps
(examples/uwsgi_api/), and the spindle module's connect() and wait()."""

import json
import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import http_request, example, wait_until


def get(srv, path, timeout=15.0):
    return http_request(srv.http_addr, "GET", path, headers=[("Connection", "close")],
                        timeout=timeout)


def get_json(srv, path, timeout=15.0):
    r = get(srv, path, timeout)
    assert r.status == 200, "%s -> %s\n%s" % (path, r, srv.log_text())
    return json.loads(r.body)


def in_thread(fn, *args):
    """Runs fn(*args) in a thread; returns join(timeout) -> its result."""
    out = {}

    def run():
        try:
            out["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 -- re-raised in join()
            out["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()

    def join(timeout):
        t.join(timeout)
        assert not t.is_alive(), "request still running after %.0fs" % timeout
        if "error" in out:
            raise out["error"]
        return out["value"]
    return join


class PingServer:
    """A peer the apps connect to: answers each line "ping" with "pong"."""

    def __init__(self, family=socket.AF_INET, path=None):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(path if path else ("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(15)
        self.addr = path if path else "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.settimeout(10)
                try:
                    line = conn.makefile("rb").readline()
                    conn.sendall(b"pong " + line)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


@pytest.fixture
def ping_server():
    s = PingServer()
    yield s
    s.close()


def closed_port():
    """A local TCP port nobody listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------
# uwsgi.async_sleep, in uWSGI's own generator style


@pytest.fixture(scope="module")
def sleeper(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file",
                          example("uwsgi_api/async_sleep.py"), "--async", "20", name="sleeper")


def slept(body):
    m = re.match(rb"slept ([\d.]+) in worker (\d+)", body)
    assert m, body
    return float(m.group(1))


def test_async_sleep_then_yield_empty_string(sleeper):
    r = get(sleeper, "/?s=0.3")
    assert r.status == 200, r
    # sub-second: uWSGI would round 0.3 down to no sleep at all; we keep it
    assert 0.29 <= slept(r.body) < 1.0, r.body


def test_yield_async_sleep_spelling(sleeper):
    r = get(sleeper, "/yielded?s=0.2")
    assert r.status == 200, r
    assert 0.19 <= slept(r.body) < 1.0, r.body


def test_async_sleep_20_concurrent_requests_overlap(sleeper):
    n, s = 20, 0.3
    t0 = time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        responses = list(pool.map(lambda _: get(sleeper, "/?s=%g" % s, timeout=30), range(n)))
    wall = time.monotonic() - t0
    for r in responses:
        assert r.status == 200, r
        assert slept(r.body) >= s - 0.01
    # serially this is 6 s; parked sleeps overlap on the 20 cores
    assert wall < n * s / 3, "20 sleeps of %.1fs took %.2fs: they did not overlap" % (s, wall)


# ---------------------------------------------------------------------------
# wait_fd_read / wait_fd_write, suspend, ready_fd, async_connect, is_connected


@pytest.fixture
def fd_app(spindle):
    return spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("uwsgi_api/fd_wait.py"),
                   "--async", "4", "--processes", "1")


def test_wait_fd_read_wakes_on_a_write_by_another_request(fd_app):
    join = in_thread(get_json, fd_app, "/read?timeout=10", 30)
    # /waiting is served while the reader is parked: the wait does not block the worker
    wait_until(lambda: get_json(fd_app, "/waiting")["readers"] == 1, 10, what="the reader to park")
    assert get_json(fd_app, "/write?data=hello") == {"written": True}
    res = join(30)
    assert res["ready_fd"] == res["pipe_fd"] >= 0, res
    assert res["data"] == "hello", res
    assert res["elapsed"] < 8, res
    assert get_json(fd_app, "/waiting")["readers"] == 0


def test_wait_fd_read_timeout_makes_ready_fd_minus_one(fd_app):
    t0 = time.monotonic()
    res = get_json(fd_app, "/read?timeout=0.4")
    assert res["ready_fd"] == -1, res
    assert res["data"] is None, res
    assert 0.38 <= res["elapsed"] < 3, res
    assert time.monotonic() - t0 < 5
    # the worker still serves others after a timed-out wait
    assert get_json(fd_app, "/write?data=z") == {"written": True}
    res = get_json(fd_app, "/read?timeout=5")
    assert res["ready_fd"] == res["pipe_fd"] and res["data"] == "z", res


def test_async_connect_then_wait_fd_write_and_is_connected(fd_app, ping_server):
    res = get_json(fd_app, "/connect?addr=%s" % ping_server.addr)
    assert res["fd"] >= 0, res
    assert res["ready_fd"] == res["fd"], res
    assert res["connected"] is True, res
    assert res["reply"] == "pong ping\n", res
    assert ping_server.accepted == 1


def test_async_connect_to_a_unix_socket(fd_app, tmp_path):
    peer = PingServer(socket.AF_UNIX, str(tmp_path / "peer.sock"))
    try:
        res = get_json(fd_app, "/connect?addr=%s" % peer.addr)
    finally:
        peer.close()
    assert res["connected"] is True and res["reply"] == "pong ping\n", res


def test_async_connect_refused_is_not_connected(fd_app):
    res = get_json(fd_app, "/connect?addr=127.0.0.1:%d" % closed_port())
    # uWSGI's contract: -1 if it failed at once, else is_connected() says no
    assert res["fd"] == -1 or res["connected"] is False, res


# ---------------------------------------------------------------------------
# postfork, post_fork_hook, who am I


@pytest.fixture(scope="module")
def forked(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file",
                          example("uwsgi_api/postfork.py"), "--processes", "2", name="forked")


def test_postfork_functions_then_post_fork_hook_in_every_worker(forked):
    workers = forked.worker_pids()
    assert sorted(workers) == [1, 2], workers
    text = forked.log_text()
    for wid, pid in workers.items():
        ran = [m.group(1) for m in re.finditer(r"\[%d\] INFO ran (.+) in worker %d$" % (pid, wid),
                                               text, re.M)]
        expected = ["postfork first", "postfork second"]
        if wid == 1:
            expected.append("postfork worker 1")  # @postfork(1): that worker only
        expected.append("post_fork_hook")
        assert ran == expected, "worker %d (pid %d) ran %s\n%s" % (wid, pid, ran, text)


def test_worker_sees_its_own_hooks_and_identity(forked):
    workers = forked.worker_pids()
    for _ in range(10):
        j = get_json(forked, "/")
        assert j["worker_id"] in (1, 2), j
        assert workers[j["worker_id"]] == j["pid"], (j, workers)
        assert {r[1] for r in j["ran"]} == {j["pid"]}, j
        assert j["ran"][-1] == ["post_fork_hook", j["pid"], j["worker_id"]], j


def test_module_globals(forked):
    j = get_json(forked, "/")
    assert j["masterpid"] == forked.pid
    assert j["numproc"] == 2
    assert j["mule_id"] == 0
    assert j["version"] == "2.0-compatible spindle"
    assert j["opt"] == {}
    # imported in the master, before the fork: worker_id() is 0 there
    assert j["loaded_in"] == {"pid": forked.pid, "worker_id": 0}
    assert j["has_cache_get"] is False  # not provided: hasattr() says so


# ---------------------------------------------------------------------------
# spindle.connect, spindle.wait, suspend() as a yield, "" chunks


@pytest.fixture(scope="module")
def api(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file",
                          example("uwsgi_api/spindle_api.py"), "--async", "4", "--processes", "1",
                          name="api")


def test_spindle_connect_tcp(api, ping_server):
    j = get_json(api, "/connect?addr=%s&timeout=5" % ping_server.addr)
    assert j == {"blocking": False, "peer": str(("127.0.0.1", int(ping_server.addr.split(":")[1]))),
                 "reply": "pong ping\n"}, j


def test_spindle_connect_unix(api, tmp_path):
    peer = PingServer(socket.AF_UNIX, str(tmp_path / "p.sock"))
    try:
        j = get_json(api, "/connect?addr=%s" % peer.addr)
    finally:
        peer.close()
    assert j["reply"] == "pong ping\n" and j["blocking"] is False, j


def test_spindle_connect_refused_raises_connection_refused(api):
    j = get_json(api, "/connect?addr=127.0.0.1:%d&timeout=5" % closed_port())
    assert j["error"] == "ConnectionRefusedError", j


def test_spindle_connect_to_a_missing_unix_socket(api, tmp_path):
    j = get_json(api, "/connect?addr=%s" % (tmp_path / "nobody.sock"))
    assert j["error"] == "FileNotFoundError", j


def loop_engine(srv):
    m = re.search(r"master \(pid \d+\): .* loop (\w+)", srv.log_text())
    assert m, srv.log_text()
    return m.group(1)


def test_spindle_wait_runs_a_coroutine_under_every_loop_engine(api):
    # under ev it runs on the worker's helper asyncio loop, under --tornado
    # on the worker's IOLoop (it used to need --tornado)
    assert get_json(api, "/wait") == {"value": 42}
    assert "never awaited" not in api.log_text()


def test_suspend_without_a_wait_lets_other_requests_run(api):
    join = in_thread(get_json, api, "/spin", 30)
    # /flag can only be served while /spin loops if suspend() really yields
    wait_until(lambda: get_json(api, "/flag")["spinner_was_running"], 10,
               what="/flag to run while /spin loops on uwsgi.suspend()")
    res = join(30)
    assert res["flag_seen"] is True and res["turns"] > 0, res


def test_empty_str_chunk_is_skipped(api):
    r = get(api, "/str?s=")
    assert r.status == 200, r
    assert r.body == b"done"


def test_non_empty_str_chunk_is_still_an_error(api):
    before = api.log_offset()
    r = get(api, "/str?s=abc")
    assert r.status == 500, r
    assert b"abc" not in r.body
    api.wait_for_log(r"TypeError: the application returned str .*a WSGI body is an iterable of bytes",
                     after=before)
