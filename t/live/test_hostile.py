"""Hostile apps and hostile clients: regression tests for what a review of
the server found (each test is named after what broke). The app is
examples/hostile.py.

Every test also checks that the worker survived: same pid, and no
"killed by signal" in the log.
"""

import re
import signal
import socket
import struct
import subprocess
import time

import pytest
import requests

from harness import RawConn, Server, build_request, example, spindle_bin, wait_until

APP = example("hostile.py")


def start(spindle, *more, **kw):
    return spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--processes", "1",
                   "--async", "4", *more, **kw)


@pytest.fixture(scope="module")
def srv(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--processes", "1",
                          "--async", "4", name="hostile")


def worker_pid(srv):
    pids = srv.worker_pids()
    assert len(pids) == 1, pids
    return next(iter(pids.values()))


def assert_worker_survived(srv, pid):
    assert "killed by signal" not in srv.log_text(), srv.log_text()[-4000:]
    assert worker_pid(srv) == pid, "the worker was replaced"
    assert requests.get(srv.url + "/ok", timeout=10).text == "ok %d" % pid


def get(srv, path, **kw):
    return requests.get(srv.url + path, timeout=20, **kw)


# --- 1. recursion through C on a fiber stack ---------------------------------

def test_recursion_through_c_does_not_kill_the_worker(spindle):
    s = start(spindle)
    pid = worker_pid(s)
    r = get(s, "/walk")
    assert r.status_code in (200, 500), r
    if r.status_code == 200:
        assert r.text == "900"
    assert_worker_survived(s, pid)


def test_literal_eval_of_nested_lists_answers(spindle):
    s = start(spindle)
    pid = worker_pid(s)
    r = get(s, "/literal")
    assert r.status_code in (200, 500), r
    assert_worker_survived(s, pid)


# --- 2. a response body that does not match its Content-Length ---------------

def test_short_body_closes_the_connection(srv):
    pid = worker_pid(srv)
    with RawConn(srv.http_addr, timeout=10) as c:
        c.send(build_request("GET", "/short") + build_request("GET", "/ok"))
        _, status, _, headers, _ = c.read_head()
        assert status == 200
        assert c.wait_closed(5), "connection kept open after a body shorter than its length"
        assert b"HTTP/1.1" not in c.buf, "next response glued into the short body: %r" % c.buf
    assert_worker_survived(srv, pid)


def test_long_body_cannot_smuggle_a_response(srv):
    pid = worker_pid(srv)
    with RawConn(srv.http_addr, timeout=10) as c:
        c.send(build_request("GET", "/inject"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"OK"
        assert c.wait_closed(5), "connection kept open after a body longer than its length"
        assert b"INJECTED" not in c.buf, "bytes past Content-Length reached the client: %r" % c.buf
    assert_worker_survived(srv, pid)


# --- 3. statuses and headers the server must refuse --------------------------

def test_interim_status_as_final_status_is_500(srv):
    with RawConn(srv.http_addr, timeout=10) as c:
        c.send(build_request("GET", "/status?s=100%20Continue"))
        r = c.read_response(skip_interim=False)
    assert r.status == 500, r


@pytest.mark.parametrize("status", ["600%20Nope", "999%20X", "099%20Low",
                                    "200%20" + "x" * 600, "200%20OK%01"],
                         ids=["600", "999", "099", "long-reason", "control-byte"])
def test_status_outside_100_599_or_overlong_reason_is_500(srv, status):
    with RawConn(srv.http_addr, timeout=10) as c:
        c.send(build_request("GET", "/status?s=" + status))
        r = c.read_response(skip_interim=False)
    assert r.status == 500, r
    assert b"x" * 600 not in r.raw_head


def test_two_different_content_lengths_are_500(srv):
    r = get(srv, "/two_lengths")
    assert r.status_code == 500


# --- 4. a huge claimed body --------------------------------------------------

HUGE = 99999999999999


def test_huge_claimed_length_does_not_preallocate(srv):
    before = srv.log_offset()
    head = ("POST /read?n=10 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % HUGE).encode()
    with RawConn(srv.http_addr, timeout=10) as c:
        c.send(head + b"0123456789")
        r = c.read_response()
    assert r.status == 200, r
    assert r.body.startswith(b"read 10 b'0123456789'")
    assert "MemoryError" not in srv.log_text()[before:]


def test_huge_claimed_length_read_whole_grows_with_the_data(srv):
    # read(CONTENT_LENGTH), as frameworks do: it must not ask for the claimed
    # size up front; the body then ends early (the client half-closes).
    before = srv.log_offset()
    head = ("POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % HUGE).encode()
    with RawConn(srv.http_addr, timeout=10) as c:
        c.send(head + b"0123456789")
        c.sock.shutdown(socket.SHUT_WR)
        try:
            r = c.read_response()
        except Exception:  # a closed connection is an acceptable answer too
            r = None
    srv.wait_for_log(r'ACCESS .*"POST /read ', after=before)
    assert "MemoryError" not in srv.log_text()[before:]
    if r is not None:
        assert b"MemoryError" not in r.body


# --- 5. a client that leaves in the middle of its upload ---------------------

def test_aborted_upload_is_not_logged_as_an_app_error(srv):
    pid = worker_pid(srv)
    before = srv.log_offset()
    c = RawConn(srv.http_addr, timeout=10)
    try:
        c.send(b"POST /upload?tag=abort HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
               + b"x" * 500)
        srv.wait_for_log(r"upload abort reading", after=before)
        # Reset, not a clean close: SO_LINGER with a zero timeout.
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        c.close()
    srv.wait_for_log(r'ACCESS .*"POST /upload\?tag=abort ', after=before)
    text = srv.log_text()[before:]
    assert "Traceback" not in text, text
    assert "exception in" not in text, text
    assert_worker_survived(srv, pid)


# --- 6-9. the HTTP layer ------------------------------------------------------

def test_400_after_head_request_keeps_its_body(srv):
    with RawConn(srv.http_addr, timeout=5) as c:
        c.send(build_request("HEAD", "/ok") + b"GARBAGE\r\n\r\n")
        r1 = c.read_response("HEAD")
        assert r1.status == 200
        r2 = c.read_response("GET")
        assert r2.status == 400
        length = int(r2.header("Content-Length", "-1"))
        assert length > 0 and len(r2.body) == length, r2


def test_status_without_reason_keeps_the_space(srv):
    with RawConn(srv.http_addr, timeout=10) as c:
        c.send(build_request("GET", "/status?s=200"))
        r = c.read_response()
    assert r.raw_head.startswith(b"HTTP/1.1 200 \r\n"), r.raw_head


def test_http_2_0_request_line_is_505(srv):
    with RawConn(srv.http_addr, timeout=10) as c:
        c.send(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
        r = c.read_response()
    assert r.status == 505, r


def test_more_than_100_header_fields_is_431(srv):
    headers = [("X-Field-%d" % i, "v") for i in range(101)]
    with RawConn(srv.http_addr, timeout=10) as c:
        c.send(build_request("GET", "/ok", headers))
        r = c.read_response()
    assert r.status == 431, r


# --- per-request state of the python plugin ----------------------------------

def test_wsgi_errors_partial_lines_do_not_merge_across_requests(srv):
    before = srv.log_offset()
    conns = [RawConn(srv.http_addr, timeout=10) for _ in range(2)]
    try:
        for tag, c in zip("AB", conns):
            c.send(build_request("GET", "/errors?group=merge&tag=%s" % tag))
        for c in conns:
            assert c.read_response().status == 200
    finally:
        for c in conns:
            c.close()
    srv.wait_for_log(r"errors-line", after=before, count=2)
    lines = [l for l in srv.log_text()[before:].splitlines() if "errors-line" in l]
    assert len(lines) == 2, lines
    for l in lines:
        assert re.search(r"errors-line (\w)-begin \1-end$", l), lines


def test_uwsgi_wait_state_does_not_leak_into_the_next_request(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--processes", "1",
                "--async", "1")
    with RawConn(s.http_addr, timeout=10) as c:
        c.send(build_request("GET", "/uwsgi_wait"))
        r = c.read_response()
        assert r.status == 200 and r.body != b"ready -1", r.body
        c.send(build_request("GET", "/uwsgi_fresh"))
        r = c.read_response()
    assert r.body == b"ready -1 yielded True", r.body


# --- 10. out of file descriptors ---------------------------------------------

@pytest.mark.slow
def test_running_out_of_fds_does_not_spin_on_accept(tmp_path):
    # The master (and so its workers) starts with few descriptors.
    s = Server(["--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--processes", "1",
                "--async", "4", "--listen", "256"], str(tmp_path / "lowfd"), nofile=48)
    s.start()
    conns = []
    try:
        pid = worker_pid(s)
        for _ in range(80):
            c = socket.create_connection((s.host, s.port), timeout=10)
            c.sendall(b"G")
            conns.append(c)
        # The worker hits its limit while these are open: wait for it to say
        # so, then give a spinning accept loop a moment to show itself.
        wait_until(lambda: "accept:" in s.log_text(), 10, what="an accept: log line")
        time.sleep(0.5)
        for c in conns:
            c.close()
        conns = []

        def served():
            try:
                return requests.get(s.url + "/ok", timeout=5).status_code == 200
            except requests.RequestException:
                return False
        wait_until(served, 20, interval=0.1, what="a request served after fds freed up")
        accept_lines = [l for l in s.log_lines() if "accept:" in l]
        assert len(accept_lines) < 50, "%d accept: lines" % len(accept_lines)
        assert "killed by signal" not in s.log_text()
        assert worker_pid(s) == pid
    except BaseException:
        print(s.log_text()[-20000:])
        raise
    finally:
        for c in conns:
            c.close()
        s.stop()
    assert not s.crash_lines(), s.crash_lines()


# --- 11. a reload with broken code -------------------------------------------

GOOD_APP = '''
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"good"]
'''


@pytest.mark.slow
def test_reload_with_broken_app_keeps_serving(spindle, tmp_path):
    app = tmp_path / "reloaded.py"
    app.write_text(GOOD_APP)
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", str(app), "--processes", "2")
    pids = set(s.worker_pids().values())
    assert get(s, "/").text == "good"
    app.write_text("def application(environ, start_response:\n    return [b'broken']\n")
    before = s.log_offset()
    s.signal(signal.SIGHUP)
    s.wait_for_log(r"reload refused", after=before, timeout=20)
    assert s.alive()
    for _ in range(10):
        r = get(s, "/")
        assert r.status_code == 200 and r.text == "good"
    assert set(s.worker_pids().values()) == pids
    assert "killed by signal" not in s.log_text()


# --- 12. close() that raises after a whole body -------------------------------

@pytest.mark.parametrize("query", ["", "?length=1"], ids=["chunked", "content-length"])
def test_close_raising_after_the_body_still_ends_it_and_serves_the_next_request(srv, query):
    pid = worker_pid(srv)
    before = srv.log_offset()
    with RawConn(srv.http_addr, timeout=10) as c:
        # A pipelined pair: the second request is already in when the first
        # one's close() raises.
        c.send(build_request("GET", "/close_raises" + query) + build_request("GET", "/ok"))
        r = c.read_response()  # a chunked body must end with its terminator
        assert r.status == 200 and r.body == b"part1-part2", r
        assert r.chunked == (query == ""), r
        assert (r.header("Connection") or "").lower() != "close", r.headers
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"ok %d" % pid, r2
    srv.wait_for_log(r"RuntimeError: close-boom", after=before)
    text = srv.log_text()[before:]
    assert "close() of the response failed in GET /close_raises" in text, text
    assert "Traceback" in text, text
    assert_worker_survived(srv, pid)


# --- 13. a body cut short must not look whole ----------------------------------

def read_until_end(c):
    """Everything the server sends, and how the stream ended: "eof" for a
    clean close, "reset" for a connection reset."""
    data = c.buf
    c.sock.settimeout(10)
    while True:
        try:
            chunk = c.sock.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        if not chunk:
            return data, "eof"
        data += chunk


@pytest.mark.parametrize("version,query", [("HTTP/1.0", ""), ("HTTP/1.1", "?length=100"),
                                           ("HTTP/1.1", "")],
                         ids=["http10-close-delimited", "content-length", "chunked"])
def test_generator_raising_midway_resets_the_connection(srv, version, query):
    pid = worker_pid(srv)
    before = srv.log_offset()
    with RawConn(srv.http_addr, timeout=10) as c:
        c.send(build_request("GET", "/raise_midway" + query, version=version))
        data, end = read_until_end(c)
    assert end == "reset", "a cut body ended with a clean close: %r" % data
    assert b"0\r\n\r\n" not in data, data
    srv.wait_for_log(r"RuntimeError: midway-boom", after=before)
    assert_worker_survived(srv, pid)


def test_body_short_of_its_content_length_resets_the_connection(srv):
    pid = worker_pid(srv)
    with RawConn(srv.http_addr, timeout=10) as c:
        c.send(build_request("GET", "/short"))
        data, end = read_until_end(c)
    assert end == "reset", "a short body ended with a clean close: %r" % data
    assert_worker_survived(srv, pid)


def test_whole_http10_body_ends_with_a_clean_close(srv):
    # The counterpart: a close-delimited body that is whole ends cleanly.
    with RawConn(srv.http_addr, timeout=10) as c:
        c.send(build_request("GET", "/raise_midway?whole=1", version="HTTP/1.0"))
        data, end = read_until_end(c)
    assert end == "eof" and data.endswith(b"first half;second half"), (end, data)
    assert b"Content-Length" not in data and b"chunked" not in data, data


# --- 14. a close with unread input must not destroy the answer ----------------

def test_answer_to_a_request_whose_body_was_not_read_survives_the_close(srv):
    # The app answers without reading the body and the client keeps sending
    # it: a close with those bytes unread would make the kernel reset the
    # connection and drop the answer's tail on the way.
    n = 4 << 20
    with RawConn(srv.http_addr, timeout=20) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(b"POST /big_unread?n=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               b"Content-Length: 100000\r\n\r\n" % n + b"a" * 1000)
        _, status, _, headers, _ = c.read_head()
        assert status == 200
        c.send(b"b" * 5000)  # arrives while the answer is still being written
        body, end = read_until_end(c)
    assert len(body) == n, "the answer lost %d bytes (%s)" % (n - len(body), end)
    assert end == "eof"


# --- 15. a file that shrinks while it is sent ---------------------------------

SHRINK_APP = '''
import os
def application(environ, start_response):
    f = open(os.path.join(os.path.dirname(__file__), "files", "big.bin"), "rb")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](f)
'''


@pytest.mark.parametrize("path", ["/wrapped", "/s/big.bin"], ids=["file_wrapper", "static-map"])
def test_file_shrinking_while_sent_resets_the_connection(spindle, tmp_path, path):
    files = tmp_path / "files"
    files.mkdir()
    big = files / "big.bin"
    size = 48 << 20  # well past what the socket buffers hold
    with open(big, "wb") as f:
        f.truncate(size)
    app = tmp_path / "shrink.py"
    app.write_text(SHRINK_APP)
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", str(app), "--processes", "1",
                "--static-map", "/s=%s" % files)
    with RawConn(s.http_addr, timeout=20) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(build_request("GET", path))
        _, status, _, headers, _ = c.read_head()
        assert status == 200
        assert dict(headers).get("Content-Length") == str(size), headers
        with open(big, "r+b") as f:
            f.truncate(1 << 20)
        data, end = read_until_end(c)
    assert len(data) < size
    assert end == "reset", "a body short of its Content-Length ended with a clean close"
