"""PEP 3333 conformance, through apps wrapped in wsgiref.validate (see
examples/validated.py) and the probe app (examples/probe.py)."""

import json
import os
import re

import pytest
import requests

from harness import RawConn, build_request, example, http_request, wait_until


@pytest.fixture(scope="module")
def srv(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("validated.py"),
                          name="validated")


@pytest.fixture(scope="module")
def probe(module_spindle, tmp_path_factory):
    close_log = tmp_path_factory.mktemp("close") / "close.log"
    s = module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("probe.py"),
                       "--env", "CLOSE_LOG=%s" % close_log, name="probe")
    s.close_log = str(close_log)
    return s


def no_validator_complaints(server):
    text = server.log_text()
    assert "AssertionError" not in text, "wsgiref.validate complained:\n" + text
    assert "WSGIWarning" not in text, "wsgiref.validate warned:\n" + text
    assert "without being closed" not in text, text


def get_env(srv, path="/env", **kw):
    r = http_request(srv.http_addr, kw.pop("method", "GET"), path, **kw)
    assert r.status == 200, r
    return json.loads(r.body), r


def test_required_environ_keys_and_types(srv):
    with RawConn(srv.http_addr) as c:
        client_port = c.local_port()
        c.send(build_request("GET", "/env/sub?a=1&b=%20x", [("Connection", "close")],
                             host="example.test:8080"))
        r = c.read_response()
    assert r.status == 200, r
    env = json.loads(r.body)
    strs = ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
            "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "HTTP_HOST",
            "wsgi.url_scheme"]
    for k in strs:
        assert k in env, "missing %s" % k
        assert env[k][0] == "str", "%s is %s" % (k, env[k][0])
    assert env["REQUEST_METHOD"][1] == "GET"
    assert env["SCRIPT_NAME"][1] == ""
    assert env["PATH_INFO"][1] == "/env/sub"
    assert env["QUERY_STRING"][1] == "a=1&b=%20x"
    assert env["SERVER_PROTOCOL"][1] == "HTTP/1.1"
    assert env["HTTP_HOST"][1] == "example.test:8080"
    assert env["SERVER_PORT"][1].isdigit()
    assert env["SERVER_NAME"][1]
    assert env["REMOTE_ADDR"][1] == "127.0.0.1"
    assert env["REMOTE_PORT"][1] == str(client_port)
    assert env["wsgi.url_scheme"][1] == "http"
    assert env["wsgi.version"] == ["tuple", [1, 0]]
    for k in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once"):
        assert env[k][0] == "bool", "%s is %s" % (k, env[k][0])
    assert env["wsgi.run_once"][1] is False
    assert set(env["_input_methods"]) == {"read", "readline", "readlines", "__iter__"}
    assert set(env["_errors_methods"]) == {"write", "writelines", "flush"}
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    for k, v in env.items():
        if not k.startswith(("wsgi.", "_")) and "." not in k:
            assert v[0] == "str", "CGI variable %s is %s" % (k, v[0])
    no_validator_complaints(srv)


def test_content_type_and_length_not_duplicated_as_http(srv):
    env, _ = get_env(srv, method="POST", body=b"abc",
                     headers=[("Content-Type", "text/x-test")])
    assert env["CONTENT_TYPE"][1] == "text/x-test"
    assert env["CONTENT_LENGTH"][1] == "3"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env


def test_path_info_percent_decoded_as_latin1(srv):
    env, _ = get_env(srv, "/env/caf%C3%A9%20x%2Fy?q=caf%C3%A9")
    assert env["PATH_INFO"][1] == "/env/caf\u00c3\u00a9 x/y"
    assert env["PATH_INFO"][1].encode("latin-1").decode("utf-8") == "/env/café x/y"
    assert env["QUERY_STRING"][1] == "q=caf%C3%A9"
    assert env["SCRIPT_NAME"][1] == ""


def test_request_uri_and_methods(srv):
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        env, _ = get_env(srv, "/env?m=1", method=method, body=b"" if method == "GET" else b"b")
        assert env["REQUEST_METHOD"][1] == method


def test_headers_become_http_vars(srv):
    env, _ = get_env(srv, headers=[("X-Custom-Thing", "value 1"), ("Accept", "text/html"),
                                   ("User-Agent", "live-test/1")])
    assert env["HTTP_X_CUSTOM_THING"][1] == "value 1"
    assert env["HTTP_ACCEPT"][1] == "text/html"
    assert env["HTTP_USER_AGENT"][1] == "live-test/1"


def test_environ_is_fresh_per_request(srv):
    with RawConn(srv.http_addr) as c:
        c.send(build_request("GET", "/env", [("X-Only-First", "1")]))
        first = json.loads(c.read_response().body)
        c.send(build_request("GET", "/env"))
        second = json.loads(c.read_response().body)
    assert "HTTP_X_ONLY_FIRST" in first
    assert "HTTP_X_ONLY_FIRST" not in second


def test_input_read_in_pieces(srv):
    data = bytes(range(256)) * 100
    r = requests.post(srv.url + "/echo", data=data, headers={"Content-Type": "app/x"}, timeout=10)
    assert r.status_code == 200 and r.content == data
    assert r.headers["X-Content-Length"] == str(len(data))
    assert r.headers["X-Content-Type"] == "app/x"
    no_validator_complaints(srv)


def test_input_readline(srv):
    r = requests.post(srv.url + "/readline", data=b"one\ntwo\n\nthree", timeout=10)
    assert r.status_code == 200
    assert r.json()["lines"] == ["one\n", "two\n", "\n", "three"]


def test_input_readline_with_size(srv):
    r = requests.post(srv.url + "/readline_sized", data=b"abcdefghij\nkl\n", timeout=10)
    assert r.status_code == 200
    parts = r.json()["parts"]
    assert "".join(parts) == "abcdefghij\nkl\n"
    assert all(len(p) <= 4 for p in parts)
    assert parts[:3] == ["abcd", "efgh", "ij\n"]


def test_input_readlines(srv):
    r = requests.post(srv.url + "/readlines", data=b"a\nbb\nccc", timeout=10)
    assert r.json()["lines"] == ["a\n", "bb\n", "ccc"]


def test_input_iteration(srv):
    r = requests.post(srv.url + "/iter_input", data=b"x\ny\nz\n", timeout=10)
    assert r.json()["lines"] == ["x\n", "y\n", "z\n"]


def test_input_long_line_across_reads(srv):
    line = b"L" * 100000 + b"\n"
    r = requests.post(srv.url + "/readline", data=line + b"tail", timeout=10)
    assert r.json()["lines"] == [line.decode(), "tail"]


def test_input_empty_for_get(srv):
    r = requests.get(srv.url + "/echo", timeout=10)
    assert r.status_code == 200 and r.content == b""


def test_input_chunked_readline(srv):
    body = b"4\r\nab\nc\r\n3\r\nd\ne\r\n0\r\n\r\n"
    with RawConn(srv.http_addr) as c:
        c.send(build_request("POST", "/readline", [("Transfer-Encoding", "chunked")]) + body)
        r = c.read_response()
    assert json.loads(r.body)["lines"] == ["ab\n", "cd\n", "e"]


def test_input_read_all_without_size(probe):
    r = requests.post(probe.url + "/readall", data=b"0123456789" * 1000, timeout=10)
    info = r.json()
    assert info["len"] == 10000 and info["more"] == 0


def test_wsgi_errors_goes_to_log(srv):
    r = requests.get(srv.url + "/errors?tok4711", timeout=10)
    assert r.status_code == 200
    srv.wait_for_log(r"wsgi\.errors says tok4711")
    srv.wait_for_log(r"second line tok4711")


def test_write_callable(srv):
    r = http_request(srv.http_addr, "GET", "/write")
    assert r.status == 200
    assert r.body == b"written-1 written-2 returned\n"


def test_write_callable_keepalive_in_sync(srv):
    with RawConn(srv.http_addr) as c:
        c.send(build_request("GET", "/write") + build_request("GET", "/cl"))
        assert c.read_response().body == b"written-1 written-2 returned\n"
        assert c.read_response().body == b"fixed length body\n"


def test_start_response_exc_info_replaces_unsent_headers(srv):
    r = http_request(srv.http_addr, "GET", "/exc_info")
    assert r.status == 503 and r.reason == "Replaced"
    assert r.header("X-Second") == "yes"
    assert r.header("X-First") is None
    assert r.body == b"replaced body\n"


def test_start_response_twice_without_exc_info_raises(probe):
    r = http_request(probe.http_addr, "GET", "/twice")
    assert r.status == 200
    assert r.body.startswith(b"raised "), r.body


def test_exc_info_after_headers_sent_aborts_response(probe):
    with RawConn(probe.http_addr) as c:
        c.send(build_request("GET", "/exc_after_headers"))
        version, status, reason, headers, head = c.read_head()
        assert status == 200
        assert c.wait_closed(10), "the connection must be dropped when the body cannot finish"
        rest = c.buf
    assert b"first part" in rest
    assert b"must not be sent" not in rest
    # a chunked body must not be terminated as if complete
    assert not rest.endswith(b"0\r\n\r\n")
    probe.wait_for_log(r"late failure")


def test_custom_iterable_with_close(srv):
    r = http_request(srv.http_addr, "GET", "/iterable")
    assert r.status == 200 and r.body == b"custom iterable\n"
    no_validator_complaints(srv)


def test_generator_and_list_bodies_validated(srv):
    for path, body in (("/gen?3", b"chunk 0\nchunk 1\nchunk 2\n"), ("/list", b"one two three\n"),
                       ("/tuple", b"tuple\n"), ("/cl", b"fixed length body\n")):
        r = http_request(srv.http_addr, "GET", path)
        assert r.status == 200 and r.body == body
    no_validator_complaints(srv)


def test_app_exception_gives_500_without_traceback(probe):
    before = probe.log_offset()
    r = http_request(probe.http_addr, "GET", "/error?token=x9z")
    assert r.status == 500
    assert b"Traceback" not in r.body and b"secret-failure" not in r.body
    assert len(r.body) < 1000
    probe.wait_for_log(r"Traceback \(most recent call last\)", after=before)
    probe.wait_for_log(r"RuntimeError: secret-failure-x9z", after=before)
    text = probe.log_text()[before:]
    assert re.search(r"ERROR", text)


def test_exception_during_iteration_truncates(probe):
    with RawConn(probe.http_addr) as c:
        c.send(build_request("GET", "/error_in_iter"))
        _, status, _, _, _ = c.read_head()
        assert status == 200
        assert c.wait_closed(10)
        assert not c.buf.endswith(b"0\r\n\r\n")
    probe.wait_for_log(r"failure-in-iteration")
    assert requests.get(probe.url + "/pid", timeout=10).status_code == 200


def close_log_lines(probe):
    try:
        with open(probe.close_log) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def test_close_called_after_complete_response(probe):
    r = requests.get(probe.url + "/track", params={"tag": "complete", "chunks": "3",
                                                   "size": "10"}, timeout=10)
    assert r.status_code == 200 and len(r.content) == 30
    wait_until(lambda: "closed complete" in close_log_lines(probe), 10,
               what="close() after a complete response")


def test_close_called_when_client_disconnects(probe):
    c = RawConn(probe.http_addr)
    c.send(build_request("GET", "/track?tag=disconnect&chunks=100000&size=65536"))
    c.read_head()
    c.sock.recv(65536)
    wait_until(lambda: "start disconnect" in close_log_lines(probe), 10, what="app started")
    c.close()
    wait_until(lambda: "closed disconnect" in close_log_lines(probe), 20,
               what="close() after the client went away")
    assert requests.get(probe.url + "/pid", timeout=10).status_code == 200


def test_close_called_when_client_disconnects_slow_generator(probe):
    c = RawConn(probe.http_addr)
    c.send(build_request("GET", "/track?tag=slowgen&chunks=600&size=100&delay=0.05"))
    c.read_head()
    wait_until(lambda: "start slowgen" in close_log_lines(probe), 10, what="app started")
    c.close()
    # the generator notices on its next write at the latest (600 x 0.05 s = 30 s
    # would be the whole body; we expect close long before that)
    wait_until(lambda: "closed slowgen" in close_log_lines(probe), 20,
               what="close() after the client went away")


def test_file_wrapper(probe, tmp_path):
    path = tmp_path / "payload.bin"
    data = os.urandom(1 << 20) + b"end"
    path.write_bytes(data)
    for cl in ("", "1"):
        r = requests.get(probe.url + "/file", params={"path": str(path), "cl": cl}, timeout=20)
        assert r.status_code == 200
        assert r.content == data
        if cl:
            assert r.headers["Content-Length"] == str(len(data))


def test_file_wrapper_head_and_keepalive(probe, tmp_path):
    path = tmp_path / "small.txt"
    path.write_bytes(b"small file\n")
    with RawConn(probe.http_addr) as c:
        q = "/file?path=%s&cl=1" % path
        c.send(build_request("GET", q) + build_request("GET", q))
        assert c.read_response().body == b"small file\n"
        assert c.read_response().body == b"small file\n"


def test_status_line_reason_passed_through(srv):
    r = http_request(srv.http_addr, "GET", "/status")
    assert r.raw_head.startswith(b"HTTP/1.1 299 Custom Reason\r\n")
