"""HTTP/1.x behaviour over the http-socket: keep-alive, pipelining, chunked
bodies both ways, 100-continue, HEAD, Connection: close, HTTP/1.0, header
handling, large bodies, concurrency and the access log."""

import hashlib
import json
import re
import threading
import time

import pytest
import requests

from harness import ACCESS_RE, LINE_RE, RawConn, build_request, chunked, example, http_request


@pytest.fixture(scope="module")
def srv(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("validated.py"),
                          name="validated")


@pytest.fixture(scope="module")
def probe(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("probe.py"),
                          "--processes", "2", name="probe")


@pytest.fixture(scope="module")
def hello(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("hello.py"),
                          name="hello")


def test_hello_world(hello):
    r = requests.get(hello.url + "/", timeout=10)
    assert r.status_code == 200
    assert r.content == b"Hello, World!\n"
    assert r.headers["Content-Type"] == "text/plain"
    assert r.headers["Content-Length"] == "14"


def test_keepalive_serves_several_requests_on_one_connection(srv):
    with RawConn(srv.http_addr) as c:
        for i in range(5):
            c.send(build_request("POST", "/echo", body=b"request %d" % i))
            r = c.read_response()
            assert r.status == 200
            assert r.body == b"request %d" % i
        # and the connection is still usable: nobody closed it
        assert c.is_open_after(0.2)


def test_requests_session_reuses_connection(srv):
    with requests.Session() as s:
        for i in range(10):
            r = s.post(srv.url + "/echo", data=b"x" * i, timeout=10)
            assert r.status_code == 200 and r.content == b"x" * i


def test_pipelined_requests_answered_in_order(srv):
    reqs = b"".join(build_request("POST", "/echo", body=b"pipelined-%d" % i) for i in range(6))
    reqs += build_request("GET", "/cl")
    with RawConn(srv.http_addr) as c:
        c.send(reqs)
        for i in range(6):
            r = c.read_response()
            assert r.status == 200
            assert r.body == b"pipelined-%d" % i
        r = c.read_response()
        assert r.body == b"fixed length body\n"


def test_pipelined_requests_split_at_odd_places(srv):
    data = b"".join(build_request("POST", "/echo", body=b"part-%d" % i) for i in range(4))
    with RawConn(srv.http_addr) as c:
        for k in range(0, len(data), 13):
            c.send(data[k:k + 13])
        for i in range(4):
            assert c.read_response().body == b"part-%d" % i


def test_chunked_request_body_is_dechunked(srv):
    body = chunked("hello ", "chunked ", "x" * 5000, "world")
    with RawConn(srv.http_addr) as c:
        c.send(build_request("POST", "/echo", [("Transfer-Encoding", "chunked"),
                                               ("Content-Type", "text/plain")]) + body)
        r = c.read_response()
        assert r.status == 200
        assert r.body == b"hello chunked " + b"x" * 5000 + b"world"
        # the connection stays in sync after a chunked body
        c.send(build_request("POST", "/echo", body=b"after"))
        assert c.read_response().body == b"after"


def test_chunked_request_body_with_extensions_and_trailers(srv):
    body = b"5;ext=1\r\nabcde\r\n3\r\nfgh\r\n0\r\nX-Trailer: t\r\n\r\n"
    with RawConn(srv.http_addr) as c:
        c.send(build_request("POST", "/echo", [("Transfer-Encoding", "chunked")]) + body)
        r = c.read_response()
        assert r.status == 200 and r.body == b"abcdefgh"


def test_expect_100_continue_sent_when_app_reads_body(srv):
    with RawConn(srv.http_addr) as c:
        c.send(build_request("POST", "/echo", [("Content-Length", "11"),
                                               ("Expect", "100-continue")]))
        interim = c.read_response(skip_interim=False, timeout=10)
        assert interim.status == 100
        assert interim.raw_head.startswith(b"HTTP/1.1 100 Continue\r\n")
        c.send(b"hello there")
        r = c.read_response()
        assert r.status == 200 and r.body == b"hello there"


def test_expect_100_continue_not_sent_when_app_ignores_body(hello):
    with RawConn(hello.http_addr) as c:
        c.send(build_request("POST", "/", [("Content-Length", "5"), ("Expect", "100-continue"),
                                           ("Connection", "close")]))
        r = c.read_response(skip_interim=False, timeout=10)
        assert r.status == 200, "an app that never reads the body gets no 100 Continue"
        assert r.body == b"Hello, World!\n"


def test_head_has_no_body_and_keeps_connection_in_sync(srv):
    get = http_request(srv.http_addr, "GET", "/cl")
    with RawConn(srv.http_addr) as c:
        c.send(build_request("HEAD", "/cl"))
        r = c.read_response("HEAD")
        assert r.status == 200
        assert r.header("Content-Length") == get.header("Content-Length") == "18"
        # if the server had sent a body it would be parsed as the next response
        c.send(build_request("GET", "/list"))
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"one two three\n"


def test_head_of_generator_response(srv):
    with RawConn(srv.http_addr) as c:
        c.send(build_request("HEAD", "/gen"))
        r = c.read_response("HEAD")
        assert r.status == 200
        c.send(build_request("GET", "/cl"))
        assert c.read_response().body == b"fixed length body\n"


def test_connection_close_is_honoured(srv):
    with RawConn(srv.http_addr) as c:
        c.send(build_request("GET", "/cl", [("Connection", "close")]))
        r = c.read_response()
        assert r.status == 200
        assert c.wait_closed(10), "server kept the connection open after Connection: close"


def test_http10_without_keepalive_closes(srv):
    with RawConn(srv.http_addr) as c:
        c.send(b"GET /cl HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"fixed length body\n"
        assert r.version.startswith("HTTP/1.")
        assert c.wait_closed(10)


def test_http10_keepalive_on_request(srv):
    with RawConn(srv.http_addr) as c:
        for _ in range(2):
            c.send(b"GET /cl HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.body == b"fixed length body\n"


def test_content_length_passed_through(srv):
    r = http_request(srv.http_addr, "GET", "/cl")
    assert r.header("Content-Length") == "18"
    assert r.header("X-App") == "cl"
    assert r.header("Transfer-Encoding") is None
    assert r.body == b"fixed length body\n"


def test_list_gets_computed_content_length(probe):
    r = http_request(probe.http_addr, "GET", "/list")
    assert r.status == 200
    assert r.header("Content-Length") == str(len(b"one two three\n"))
    assert r.header("Transfer-Encoding") is None
    assert r.body == b"one two three\n"


def test_tuple_gets_computed_content_length(probe):
    r = http_request(probe.http_addr, "GET", "/tuple")
    assert r.header("Content-Length") == "6" and r.body == b"tuple\n"


def test_empty_list_body(probe):
    with RawConn(probe.http_addr) as c:
        c.send(build_request("GET", "/empty"))
        r = c.read_response()
        assert r.status == 200 and r.body == b""
        assert r.header("Content-Length") == "0"
        c.send(build_request("GET", "/list"))
        assert c.read_response().body == b"one two three\n"


def test_validated_iterables_without_length_are_complete(srv):
    """Wrapped by the validator these are plain iterators: no length known,
    so chunked (or close-delimited), but byte-exact."""
    with RawConn(srv.http_addr) as c:
        for path, body in (("/list", b"one two three\n"), ("/tuple", b"tuple\n"),
                           ("/empty", b"")):
            c.send(build_request("GET", path))
            r = c.read_response()
            assert r.status == 200 and r.body == body


def test_204_has_no_body(srv):
    with RawConn(srv.http_addr) as c:
        c.send(build_request("GET", "/nocontent"))
        r = c.read_response()
        assert r.status == 204 and r.body == b""
        assert r.header("Transfer-Encoding") is None
        c.send(build_request("GET", "/cl"))
        assert c.read_response().body == b"fixed length body\n"


def test_generator_is_chunked_on_http11(srv):
    with RawConn(srv.http_addr) as c:
        c.send(build_request("GET", "/gen?7"))
        r = c.read_response()
        assert r.status == 200
        assert r.chunked, "generator without Content-Length must be chunked on HTTP/1.1: %r" % r
        assert r.header("Content-Length") is None
        assert r.body == b"".join(b"chunk %d\n" % i for i in range(7))
        # keep-alive survives a chunked response
        c.send(build_request("GET", "/cl"))
        assert c.read_response().body == b"fixed length body\n"


def test_generator_on_http10_is_close_delimited(srv):
    with RawConn(srv.http_addr) as c:
        c.send(b"GET /gen?4 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert not r.chunked and r.header("Transfer-Encoding") is None
        assert r.header("Content-Length") is None
        # read_response read to EOF: the body is complete and the server closed
        assert r.body == b"".join(b"chunk %d\n" % i for i in range(4))
        assert c.eof


def test_custom_status_and_repeated_headers(srv):
    r = http_request(srv.http_addr, "GET", "/status")
    assert r.status == 299 and r.reason == "Custom Reason"
    assert r.header_all("X-Multi") == ["a", "b"]


def test_underscore_headers_dropped_and_duplicates_joined(srv):
    r = http_request(srv.http_addr, "GET", "/env", headers=[
        ("X-Auth-User", "good"), ("X_Auth_User", "evil"), ("X-Dup", "a"), ("X-Dup", "b"),
        ("X_Only_Underscore", "evil")])
    env = json.loads(r.body)
    assert env["HTTP_X_AUTH_USER"][1] == "good"
    assert env["HTTP_X_DUP"][1] == "a, b"
    assert "HTTP_X_ONLY_UNDERSCORE" not in env
    assert not any("evil" == v[1] for v in env.values())


def test_large_request_body(probe):
    data = hashlib.sha256(b"seed").hexdigest().encode() * (3 * 1024 * 1024 // 64)
    r = requests.post(probe.url + "/readall", data=data, timeout=30)
    assert r.status_code == 200
    info = r.json()
    assert info["len"] == len(data) and info["more"] == 0
    assert info["tail"] == data[-32:].decode()


def test_large_chunked_request_body(probe):
    def gen():
        for i in range(64):
            yield b"%05d" % i * 4000
    r = requests.post(probe.url + "/readall", data=gen(), timeout=30)
    assert r.status_code == 200
    assert r.json()["len"] == 64 * 20000


def test_large_streamed_response(probe):
    n = 8 * 1024 * 1024 + 123
    r = requests.get(probe.url + "/big", params={"n": n}, timeout=60)
    assert r.status_code == 200
    assert len(r.content) == n
    assert r.content[:65536] == b"A" * 65536 and r.content[65536:65537] == b"B"


def test_slow_reader_gets_whole_response(probe):
    """The client reads slowly, so the server's writes hit EAGAIN and park."""
    n = 4 * 1024 * 1024
    with RawConn(probe.http_addr, timeout=30) as c:
        c.send(build_request("GET", "/big?n=%d" % n, [("Connection", "close")]))
        time.sleep(0.5)  # let the socket buffers fill (back-pressure, not a readiness wait)
        r = c.read_response(timeout=30)
        assert r.status == 200 and len(r.body) == n


def test_concurrent_clients(probe):
    errors = []
    results = []

    def worker(k):
        try:
            with requests.Session() as s:
                for i in range(10):
                    r = s.post(probe.url + "/readall", data=b"%d-%d" % (k, i) * 100, timeout=30)
                    assert r.status_code == 200
                    results.append(r.json()["len"])
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(results) == 120


def test_access_log_line(srv):
    with RawConn(srv.http_addr) as c:
        c.send(build_request("GET", "/cl?access=probe1", [("Connection", "close")]))
        r = c.read_response()
        assert r.status == 200
    m = srv.wait_for_log(r'ACCESS 127\.0\.0\.1 "GET /cl\?access=probe1 HTTP/1\.1" 200 18 [\d.]+m?s')
    line = [l for l in srv.log_lines() if "access=probe1" in l][0]
    assert LINE_RE.search(line), "log line format: %r" % line
    assert ACCESS_RE.search(line)
    assert m


def test_log_lines_have_the_documented_format(srv):
    http_request(srv.http_addr, "GET", "/cl")
    lines = [l for l in srv.log_lines() if l.strip()]
    assert lines
    # every line the server itself writes starts with time, pid, level
    structured = [l for l in lines if LINE_RE.search(l)]
    assert structured
    for l in structured:
        assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[\d+\] [A-Z]+ ", l)


def test_disable_logging_suppresses_access_log(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("hello.py"),
                "--disable-logging")
    for _ in range(3):
        assert requests.get(s.url + "/quiet", timeout=10).status_code == 200
    assert s.access_lines() == []
    assert "/quiet" not in s.log_text()


def test_many_sequential_connections(hello):
    for _ in range(200):
        with RawConn(hello.http_addr) as c:
            c.send(build_request("GET", "/", [("Connection", "close")]))
            assert c.read_response().status == 200


def test_client_closing_early_does_not_hurt_others(probe):
    for _ in range(10):
        c = RawConn(probe.http_addr)
        c.send(build_request("GET", "/big?n=%d" % (4 << 20)))
        c.sock.recv(1000)
        c.close()
    r = requests.get(probe.url + "/pid", timeout=10)
    assert r.status_code == 200


def test_multiple_http_sockets(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--http-socket", "127.0.0.1:0",
                "--wsgi-file", example("hello.py"))
    addrs = s.http_addrs()
    assert len(addrs) == 2 and addrs[0] != addrs[1]
    for a in addrs:
        assert requests.get("http://%s/" % a, timeout=10).content == b"Hello, World!\n"


def test_unread_body_is_skipped_before_next_request(hello):
    """The app never reads the body; the next request on the connection must
    still be parsed from the right place."""
    with RawConn(hello.http_addr) as c:
        c.send(build_request("POST", "/", body=b"GET /evil HTTP/1.1\r\n\r\n" + b"z" * 5000))
        assert c.read_response().body == b"Hello, World!\n"
        c.send(build_request("POST", "/", [("Transfer-Encoding", "chunked")])
               + chunked("GET /evil2 HTTP/1.1\r\n\r\n", "q" * 3000))
        assert c.read_response().body == b"Hello, World!\n"
        c.send(build_request("GET", "/after"))
        assert c.read_response().body == b"Hello, World!\n"
        assert c.is_open_after(0.2)
    assert "/evil" not in hello.log_text()


def test_read_all_does_not_eat_pipelined_request(probe):
    with RawConn(probe.http_addr) as c:
        c.send(build_request("POST", "/echo", body=b"first body")
               + build_request("POST", "/echo", body=b"second")
               + build_request("GET", "/list"))
        assert c.read_response().body == b"first body"
        assert c.read_response().body == b"second"
        assert c.read_response().body == b"one two three\n"


def test_pipelined_chunked_bodies(probe):
    with RawConn(probe.http_addr) as c:
        c.send(build_request("POST", "/echo", [("Transfer-Encoding", "chunked")])
               + chunked("ab", "cd")
               + build_request("POST", "/echo", [("Transfer-Encoding", "chunked")])
               + chunked("ef"))
        assert c.read_response().body == b"abcd"
        assert c.read_response().body == b"ef"


def test_pipelined_generators_stay_ordered(probe):
    with RawConn(probe.http_addr) as c:
        c.send(b"".join(build_request("GET", "/gen?n=%d" % n) for n in (3, 1, 4)))
        for n in (3, 1, 4):
            r = c.read_response()
            assert r.body == b"".join(b"line %d\n" % i for i in range(n))


# -- Date and Server (RFC 9110 6.6.1: an origin server with a clock sends Date)

def assert_fresh_date(value):
    import email.utils
    assert re.fullmatch(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|"
                        r"Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT", value or ""), value
    when = email.utils.parsedate_to_datetime(value).timestamp()
    assert abs(when - time.time()) < 5, value


@pytest.mark.parametrize("path", ["/list", "/gen", "/nowhere", "/error"])
def test_every_response_has_date_and_server(probe, path):
    with RawConn(probe.http_addr) as c:
        c.send(build_request("GET", path))
        r = c.read_response()
    assert r.status in (200, 404, 500), r
    assert_fresh_date(r.header("Date"))
    assert r.header("Server") == "spindle"
    assert len(r.header_all("Date")) == 1 and len(r.header_all("Server")) == 1


def test_bad_request_answer_has_date_and_server(hello):
    with RawConn(hello.http_addr) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        r = c.read_response()
    assert r.status == 400
    assert_fresh_date(r.header("Date"))
    assert r.header("Server") == "spindle"


def test_date_follows_the_clock_on_one_connection(hello):
    with RawConn(hello.http_addr) as c:
        c.send(build_request("GET", "/"))
        first = c.read_response().header("Date")
        deadline = time.monotonic() + 10
        while True:
            c.send(build_request("GET", "/"))
            now = c.read_response().header("Date")
            if now != first or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert now != first, "Date stayed %r for 10 s" % first
    assert_fresh_date(now)


def test_no_server_header_and_the_apps_own_fields(spindle, tmp_path):
    app = tmp_path / "own.py"
    app.write_text(
        "def application(environ, start_response):\n"
        "    h = [('Content-Type', 'text/plain')]\n"
        "    if environ['PATH_INFO'] == '/own':\n"
        "        h += [('Date', 'Sun, 06 Nov 1994 08:49:37 GMT'), ('Server', 'mine/1.0')]\n"
        "    start_response('200 OK', h)\n"
        "    return [b'ok']\n")
    with_header = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", str(app))
    r = http_request(with_header.http_addr, "GET", "/own")
    assert r.header_all("Date") == ["Sun, 06 Nov 1994 08:49:37 GMT"]
    assert r.header_all("Server") == ["mine/1.0"]
    without = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", str(app),
                      "--no-server-header", name="quiet")
    r = http_request(without.http_addr, "GET", "/")
    assert r.header("Server") is None
    assert_fresh_date(r.header("Date"))
