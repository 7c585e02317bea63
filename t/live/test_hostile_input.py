"""Hostile input, round two: regression tests for what a security review
got through the HTTP and uwsgi ports (each test is named after what broke).
The parser's side of each is unit-tested in t/unit/test_http_strict.cc;
these check what the application and the log end up seeing.

The app is examples/probe.py: /headers answers with the CGI variables it
got, /echo with the body it read.
"""

import json
import socket
import struct

import pytest

from harness import RawConn, build_request, example


@pytest.fixture(scope="module")
def srv(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--socket", "127.0.0.1:0",
                          "--wsgi-file", example("probe.py"), "--limit-post", "1000",
                          "--buffer-size", "16384", name="hostile_input")


def exchange(srv, data, method="GET", pieces=None):
    """Send data (whole, or cut at the offsets in pieces), read one response."""
    with RawConn(srv.http_addr, timeout=10) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if pieces:
            last = 0
            for cut in list(pieces) + [len(data)]:
                c.send(data[last:cut])
                last = cut
        else:
            c.send(data)
        return c.read_response(method)


def environ_of(r):
    assert r.status == 200, r
    return json.loads(r.body)


CHUNKED_HEAD = (b"POST %s HTTP/1.1\r\nHost: good.example\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
EVIL_TRAILERS = (b"0\r\nHost: evil\r\nContent-Length: 3\r\nCookie: session=stolen\r\n"
                 b"X-Forwarded-For: 6.6.6.6\r\n\r\n")


# --- trailers ------------------------------------------------------------------

@pytest.mark.parametrize("cut", ["one-packet", "trailers-apart", "byte-pieces"])
def test_trailer_fields_never_reach_the_environ(srv, cut):
    data = CHUNKED_HEAD % b"/headers" + b"5\r\nhello\r\n" + EVIL_TRAILERS
    pieces = {"one-packet": None,
              "trailers-apart": [len(data) - len(EVIL_TRAILERS)],
              "byte-pieces": range(len(data) - 60, len(data), 7)}[cut]
    env = environ_of(exchange(srv, data, "POST", pieces))
    assert env["HTTP_HOST"] == "good.example", env
    for name in ("HTTP_COOKIE", "HTTP_X_FORWARDED_FOR", "CONTENT_LENGTH"):
        assert name not in env, env


def test_trailer_content_length_does_not_truncate_the_body(srv):
    r = exchange(srv, CHUNKED_HEAD % b"/echo" + b"5\r\nhello\r\n" + EVIL_TRAILERS, "POST")
    assert r.status == 200 and r.body == b"hello", r


# --- chunk extensions ----------------------------------------------------------

def test_huge_chunk_extension_counts_toward_limit_post(srv):
    data = CHUNKED_HEAD % b"/echo" + b"5;x=" + b"a" * 500000 + b"\r\nhello\r\n0\r\n\r\n"
    with RawConn(srv.http_addr, timeout=10) as c:
        try:
            c.send(data)
        except OSError:
            pass  # refused and closed while we were still sending
        r = c.read_response("POST")
    assert r.status == 413, r


@pytest.mark.parametrize("line", [b"5 ; a=b", b"5\t;a = b", b'5;a="q q";b'])
def test_chunk_extension_with_whitespace_is_accepted(srv, line):
    r = exchange(srv, CHUNKED_HEAD % b"/echo" + line + b"\r\nhello\r\n0\r\n\r\n", "POST")
    assert r.status == 200 and r.body == b"hello", r


# --- Host and the request target ---------------------------------------------------

@pytest.mark.parametrize("data", [
    b"GET /headers HTTP/1.1\r\n\r\n",
    b"GET /headers HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /headers HTTP/1.1\r\nHost: a b/c\r\n\r\n",
    b"GET http://user:pass@evil/headers HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET ftp://a/headers HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /headers#frag HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET  /headers HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /headers  HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    b"GET /headers HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\t2\r\n\r\n",
], ids=["http11-without-host", "two-hosts", "invalid-host", "userinfo", "ftp-scheme",
        "asterisk-with-get", "fragment", "two-spaces-before-target", "two-spaces-after-target",
        "obs-fold-transfer-encoding", "obs-fold"])
def test_strict_host_target_and_obs_fold_are_400(srv, data):
    with RawConn(srv.http_addr, timeout=10) as c:
        c.send(data)
        r = c.read_response()
        assert r.status == 400, r
        assert c.wait_closed(10)


def test_absolute_form_authority_replaces_host(srv):
    env = environ_of(exchange(srv, b"GET http://origin.example:81/headers?q=1 HTTP/1.1\r\n"
                                   b"Host: other.example\r\n\r\n"))
    assert env["HTTP_HOST"] == "origin.example:81"
    assert env["PATH_INFO"] == "/headers" and env["QUERY_STRING"] == "q=1"


def test_options_asterisk_reaches_the_app(srv):
    r = exchange(srv, b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
    assert r.status == 404, r  # probe.py has no route "*": the app answered


def test_http10_without_host_is_served(srv):
    env = environ_of(exchange(srv, b"GET /headers HTTP/1.0\r\n\r\n"))
    assert "HTTP_HOST" not in env


# --- methods -----------------------------------------------------------------------

@pytest.mark.parametrize("method", ["PROPFIND", "PURGE", "BREW", "get", "X-CUSTOM"])
def test_extension_method_reaches_the_app(srv, method):
    env = environ_of(exchange(srv, build_request(method, "/headers"), method))
    assert env["REQUEST_METHOD"] == method


# --- the uwsgi port ----------------------------------------------------------------

def uwsgi_raw(pairs, body=b""):
    """A uwsgi packet from (name, value) pairs, repeats allowed."""
    payload = b""
    for k, v in pairs:
        kb, vb = k.encode("latin-1"), v.encode("latin-1")
        payload += struct.pack("<H", len(kb)) + kb + struct.pack("<H", len(vb)) + vb
    return struct.pack("<BHB", 0, len(payload), 0) + payload + body


def uwsgi_exchange(srv, pairs, method="GET"):
    with RawConn(srv.uwsgi_addr, timeout=10) as c:
        c.send(uwsgi_raw(pairs))
        return c.read_response(method)


BASE = [("REQUEST_URI", "/headers"), ("PATH_INFO", "/headers"), ("QUERY_STRING", ""),
        ("SERVER_PROTOCOL", "HTTP/1.1"), ("HTTP_HOST", "u.test")]


def test_uwsgi_duplicated_request_method_is_400(srv):
    # The server read the first (HEAD: no body sent), the app the last.
    r = uwsgi_exchange(srv, [("REQUEST_METHOD", "HEAD")] + BASE + [("REQUEST_METHOD", "GET")],
                       "HEAD")
    assert r.status == 400, r


def test_uwsgi_packet_without_request_method_is_400(srv):
    assert uwsgi_exchange(srv, BASE).status == 400


def test_uwsgi_repeated_header_is_joined(srv):
    env = environ_of(uwsgi_exchange(srv, [("REQUEST_METHOD", "GET")] + BASE +
                                    [("HTTP_ACCEPT", "a"), ("HTTP_ACCEPT", "b")]))
    assert env["HTTP_ACCEPT"] == "a, b"


# --- logs ----------------------------------------------------------------------------

FORGED = "2026-01-01 00:00:00.000 [1] ACCESS forged"


def test_uwsgi_cr_lf_nul_never_reach_the_log(srv):
    before = srv.log_offset()
    evil_uri = "/headers\r\n" + FORGED + "\r\n"
    pairs = [("REQUEST_METHOD", "GET"), ("REQUEST_URI", evil_uri), ("PATH_INFO", "/headers"),
             ("SERVER_PROTOCOL", "HTTP/1.1\x00\r\n" + FORGED)]
    assert uwsgi_exchange(srv, pairs).status == 200
    # A refused packet logs the variable's name.
    assert uwsgi_exchange(srv, [("REQUEST_METHOD", "GET"), ("X\r\n" + FORGED, "1"),
                                ("X\r\n" + FORGED, "2")]).status == 400
    srv.wait_for_log(r"ACCESS .*/headers\\r\\n", after=before)
    srv.wait_for_log(r"repeated uwsgi variable X\\r\\n", after=before)
    with open(srv.log_path, "rb") as f:
        f.seek(before)
        raw = f.read()
    assert b"\r" not in raw and b"\x00" not in raw, raw
    for line in raw.split(b"\n"):
        assert not line.startswith(FORGED.encode()), raw


def test_long_request_line_is_cut_in_the_log_with_a_marker(srv):
    before = srv.log_offset()
    path = "/headers?" + "q" * 12000
    assert exchange(srv, build_request("GET", path)).status == 200
    line = srv.wait_for_log(r"ACCESS .*\[cut: \d+ more bytes\]", after=before)
    assert line
