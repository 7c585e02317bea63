"""Rejected requests: malformed (400), too large a body (413), too large a
head (431), unsupported transfer coding (501), and the timeouts. Each
rejection answers with the status, closes the connection and logs a WARN
line with the status code; the server keeps serving afterwards."""

import re
import time

import pytest
import requests

from harness import RawConn, build_request, chunked, example


@pytest.fixture(scope="module")
def srv(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("validated.py"),
                          "--buffer-size", "4096", "--limit-post", "1000", name="limits")


def expect_rejected(srv, data, status, timeout=10):
    """Send data, expect one response with `status`, then the close, and a
    WARN log line naming the status."""
    before = srv.log_offset()
    with RawConn(srv.http_addr, timeout) as c:
        c.send(data)
        r = c.read_response(timeout=timeout)
        assert r.status == status, "expected %d, got %r" % (status, r)
        assert c.wait_closed(timeout), "connection left open after a %d" % status
    srv.wait_for_log(r"WARN .*\b%d\b" % status, after=before)
    # and the server still serves
    assert requests.get(srv.url + "/cl", timeout=10).status_code == 200
    return r


@pytest.mark.parametrize("data", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
    b"GET / HTTX/1.1\r\nHost: x\r\n\r\n",
    b"GET /\x01bad HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Space : before-colon\r\n\r\n",
], ids=["garbage", "no-colon", "bad-version", "control-char", "bad-content-length",
        "conflicting-content-length", "bad-chunk-size", "space-before-colon"])
def test_malformed_request_gets_400_and_close(srv, data):
    expect_rejected(srv, data, 400)


def test_400_after_a_good_request_on_same_connection(srv):
    with RawConn(srv.http_addr) as c:
        c.send(build_request("GET", "/cl"))
        assert c.read_response().status == 200
        c.send(b"NOT HTTP AT ALL\r\n\r\n")
        r = c.read_response()
        assert r.status == 400
        assert c.wait_closed(10)


def test_body_over_limit_post_gets_413(srv):
    expect_rejected(srv, build_request("POST", "/echo", body=b"x" * 2000), 413)


def test_chunked_body_over_limit_post_gets_413(srv):
    body = chunked(*([b"y" * 300] * 10))
    expect_rejected(srv, build_request("POST", "/echo", [("Transfer-Encoding", "chunked")]) + body,
                    413)


def test_body_under_limit_post_is_served(srv):
    r = requests.post(srv.url + "/echo", data=b"z" * 999, timeout=10)
    assert r.status_code == 200 and r.content == b"z" * 999


def test_head_over_buffer_size_gets_431(srv):
    data = build_request("GET", "/cl", [("X-Big", "a" * 8000)])
    expect_rejected(srv, data, 431)


def test_long_uri_over_buffer_size_gets_431(srv):
    data = build_request("GET", "/cl?" + "q" * 6000)
    expect_rejected(srv, data, 431)


def test_head_under_buffer_size_is_served(srv):
    r = requests.get(srv.url + "/env", headers={"X-Medium": "m" * 2500}, timeout=10)
    assert r.status_code == 200
    assert r.json()["HTTP_X_MEDIUM"][1] == "m" * 2500


def test_unknown_transfer_encoding_gets_501(srv):
    data = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
            b"whatever")
    expect_rejected(srv, data, 501)


def test_server_survives_a_burst_of_garbage(srv):
    for i in range(30):
        with RawConn(srv.http_addr) as c:
            c.send(b"\x00\xff" * (i + 1) + b"\r\n\r\n")
            c.wait_closed(10)
    assert requests.get(srv.url + "/cl", timeout=10).status_code == 200


def test_client_closing_mid_head_and_mid_body(srv):
    for data in (b"GET /cl HTTP/1.1\r\nHost: x\r\nX-Partial",
                 b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\nonly some"):
        c = RawConn(srv.http_addr)
        c.send(data)
        c.close()
    assert requests.get(srv.url + "/cl", timeout=10).status_code == 200


# -- timeouts ---------------------------------------------------------------

@pytest.fixture(scope="module")
def timeouts(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("validated.py"),
                          "--http-timeout", "1", "--socket-timeout", "1", name="timeouts")


def test_header_timeout_closes_connection(timeouts):
    with RawConn(timeouts.http_addr) as c:
        c.send(b"GET /cl HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        t0 = time.monotonic()
        assert c.wait_closed(15), "an unfinished head must time out"
        assert time.monotonic() - t0 < 15


def test_idle_keepalive_timeout_closes_connection(timeouts):
    with RawConn(timeouts.http_addr) as c:
        c.send(build_request("GET", "/cl"))
        assert c.read_response().status == 200
        assert c.wait_closed(15), "an idle keep-alive connection must time out"


def test_silent_connection_times_out(timeouts):
    with RawConn(timeouts.http_addr) as c:
        assert c.wait_closed(15), "a connection that never sends must time out"


def test_body_read_timeout(timeouts):
    """The app parks reading a body that never completes; --socket-timeout
    ends it and the connection closes (after an error response or not)."""
    with RawConn(timeouts.http_addr) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly a little")
        assert c.wait_closed(15), "a stalled body must time out"
        head = c.buf.split(b"\r\n", 1)[0]
        assert not head.startswith(b"HTTP/1.1 200"), "a truncated body was answered 200: %r" % c.buf
    assert requests.get(timeouts.url + "/cl", timeout=10).status_code == 200


def test_warn_line_names_client_address(srv):
    before = srv.log_offset()
    with RawConn(srv.http_addr) as c:
        port = c.local_port()
        c.send(b"BROKEN\r\n\r\n")
        c.read_response()
    m = srv.wait_for_log(r"WARN .*400", after=before)
    line = srv.log_text()[m[0].start():].splitlines()[0]
    assert re.search(r"127\.0\.0\.1(:%d)?" % port, line), line
