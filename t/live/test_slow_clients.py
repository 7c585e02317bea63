"""Slow clients never starve the cores: regression tests for a body trickled
one byte at a time, which held an async core for as long as the client
liked (--socket-timeout restarts on every byte).

--post-buffering N reads bodies of up to N bytes on the loop, before a core
takes the request; --body-timeout bounds the total time a request waits
for its body, on the loop and on a core alike, and answers 408.
"""

import socket
import threading
import time

import pytest
import requests

from harness import RawConn, example

APP = example("probe.py")


class Trickler:
    """A client that sends a POST head, then its body one byte at a time."""

    def __init__(self, srv, length=1000, interval=0.2):
        self.conn = RawConn(srv.http_addr, timeout=30)
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % length)
        self.length = length
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for _ in range(self.length):
            if self.stop.wait(self.interval):
                return
            try:
                self.conn.sock.send(b"x")
            except OSError:
                return

    def response(self, timeout):
        return self.conn.read_response("POST", timeout=timeout)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.conn.close()


def timed_get(srv, path="/pid", timeout=30):
    t0 = time.monotonic()
    r = requests.get(srv.url + path, timeout=timeout)
    return r, time.monotonic() - t0


def test_slow_uploaders_with_post_buffering_hold_no_core(spindle):
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--processes", "1",
                  "--async", "2", "--post-buffering", "65536", "--socket-timeout", "60")
    uploaders = [Trickler(srv) for _ in range(6)]
    try:
        # Time for the uploads' heads to reach the worker, which would give
        # each to a core if it read bodies on cores.
        time.sleep(0.5)
        r, took = timed_get(srv)
        assert r.status_code == 200
        assert took < 5, "a request waited %.1fs behind slow uploaders" % took
    finally:
        for u in uploaders:
            u.close()


def test_body_timeout_frees_a_core_held_by_a_slow_uploader(spindle):
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--processes", "1",
                  "--async", "1", "--body-timeout", "2", "--socket-timeout", "60")
    uploader = Trickler(srv)
    try:
        # Time for the upload's head to reach the worker: its request then
        # holds the one core (the app reads its body).
        time.sleep(0.3)
        r, took = timed_get(srv)
        assert r.status_code == 200
        # Served once the uploader's budget ran out, not after 60 s.
        assert took < 20, "a request waited %.1fs behind a slow uploader" % took
        assert uploader.response(timeout=10).status == 408
        assert uploader.conn.wait_closed(10)
    finally:
        uploader.close()


def test_body_timeout_on_the_loop_with_post_buffering(spindle):
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--processes", "1",
                  "--async", "1", "--post-buffering", "65536", "--body-timeout", "1")
    uploader = Trickler(srv)
    try:
        t0 = time.monotonic()
        r = uploader.response(timeout=20)
        assert r.status == 408, r
        assert time.monotonic() - t0 < 15
        assert uploader.conn.wait_closed(10)
    finally:
        uploader.close()


def test_post_buffering_serves_the_whole_body(spindle):
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--processes", "1",
                  "--post-buffering", "100")
    # Under, at and over the buffered size: the app reads all of it.
    for n in (10, 100, 5000):
        r = requests.post(srv.url + "/echo", data=b"y" * n, timeout=10)
        assert r.status_code == 200 and r.content == b"y" * n
    r = requests.post(srv.url + "/echo", data=iter([b"a" * 60, b"b" * 60]), timeout=10)
    assert r.status_code == 200 and r.content == b"a" * 60 + b"b" * 60


@pytest.mark.parametrize("flag", ["--post-buffering=-1", "--body-timeout=soon"])
def test_bad_value_is_one_line_and_exit_2(tmp_path, flag):
    from harness import run_spindle
    code, _, err = run_spindle(["--http-socket", "127.0.0.1:0", "--wsgi-file", APP, flag],
                               str(tmp_path))
    assert code == 2
    assert flag.split("=")[0].lstrip("-") in err
