"""The uwsgi binary protocol (--socket): a raw client encoding packets in
Python, and a real nginx in front with uwsgi_pass."""

import json
import os
import time

import pytest

import nginx_front
from harness import (ConnectionClosed, RawConn, build_request, example, uwsgi_packet,
                     uwsgi_request, uwsgi_vars)



@pytest.fixture(scope="module")
def usrv(module_spindle):
    """uwsgi socket in front of the validated apps (PEP 3333 checks)."""
    return module_spindle("--socket", "127.0.0.1:0", "--wsgi-file", example("validated.py"),
                          name="uwsgi-validated")


@pytest.fixture(scope="module")
def uprobe(module_spindle):
    """uwsgi socket in front of the plain probe app (transport checks)."""
    return module_spindle("--socket", "127.0.0.1:0", "--wsgi-file", example("probe.py"),
                          name="uwsgi-probe")


# -- raw uwsgi protocol ------------------------------------------------------

def test_packet_encoding_layout():
    p = uwsgi_packet({"AB": "xyz"}, b"body", modifier1=0, modifier2=0)
    assert p[0] == 0 and p[3] == 0
    assert int.from_bytes(p[1:3], "little") == 2 + 2 + 2 + 3
    assert p[4:] == b"\x02\x00AB\x03\x00xyzbody"


def test_raw_uwsgi_get(usrv):
    r = uwsgi_request(usrv.uwsgi_addr, uwsgi_vars("GET", "/env/raw", "a=1&b=2",
                                                  headers=[("HTTP_X_FROM", "raw-client")]))
    assert r.status == 200, r
    env = json.loads(r.body)
    assert env["PATH_INFO"][1] == "/env/raw"
    assert env["QUERY_STRING"][1] == "a=1&b=2"
    assert env["REQUEST_METHOD"][1] == "GET"
    assert env["HTTP_X_FROM"][1] == "raw-client"
    # the front end's view of the client and server is passed through
    assert env["REMOTE_ADDR"][1] == "10.1.2.3"
    assert env["SERVER_NAME"][1] == "uwsgi.test"
    assert env["SCRIPT_NAME"][1] == ""
    assert env["wsgi.url_scheme"][1] == "http"


def test_raw_uwsgi_post_body(uprobe):
    body = b"posted through uwsgi " * 500
    v = uwsgi_vars("POST", "/echo", body=body, headers=[("CONTENT_TYPE", "text/plain")])
    r = uwsgi_request(uprobe.uwsgi_addr, v, body)
    assert r.status == 200
    assert r.body == body
    assert r.header("X-Content-Type") == "text/plain"


def test_raw_uwsgi_generator(uprobe):
    r = uwsgi_request(uprobe.uwsgi_addr, uwsgi_vars("GET", "/gen", "n=5"))
    assert r.status == 200
    assert r.body == b"".join(b"line %d\n" % i for i in range(5))


def test_raw_uwsgi_validated_post_and_generator(usrv):
    body = b"validated body " * 100
    v = uwsgi_vars("POST", "/echo", body=body, headers=[("CONTENT_TYPE", "text/plain")])
    r = uwsgi_request(usrv.uwsgi_addr, v, body)
    assert r.status == 200 and r.body == body
    r = uwsgi_request(usrv.uwsgi_addr, uwsgi_vars("GET", "/gen", "5"))
    assert r.status == 200
    assert r.body == b"".join(b"chunk %d\n" % i for i in range(5))


def test_raw_uwsgi_environ_from_vars(uprobe):
    r = uwsgi_request(uprobe.uwsgi_addr, uwsgi_vars("GET", "/headers", "k=v",
                                                    headers=[("HTTP_X_FROM", "raw")]))
    assert r.status == 200
    env = json.loads(r.body)
    assert env["PATH_INFO"] == "/headers" and env["QUERY_STRING"] == "k=v"
    assert env["HTTP_X_FROM"] == "raw"
    assert env["REMOTE_ADDR"] == "10.1.2.3"
    assert env.get("SCRIPT_NAME") == ""


def test_raw_uwsgi_body_split_across_writes(uprobe):
    body = b"0123456789" * 300
    packet = uwsgi_packet(uwsgi_vars("POST", "/echo", body=body), body)
    with RawConn(uprobe.uwsgi_addr) as c:
        for k in range(0, len(packet), 97):
            c.send(packet[k:k + 97])
        r = c.read_response("POST")
    assert r.status == 200 and r.body == body


def test_raw_uwsgi_truncated_packet_is_dropped(uprobe):
    with RawConn(uprobe.uwsgi_addr) as c:
        c.send(b"\x00\xff\x00\x00\x05\x00ABC")  # announces 255 bytes, sends 7, then stops
        c.sock.shutdown(1)
        assert c.wait_closed(15)
        assert not c.buf.startswith(b"HTTP/1.1 200")
    r = uwsgi_request(uprobe.uwsgi_addr, uwsgi_vars("GET", "/list"))
    assert r.status == 200


def test_unix_uwsgi_socket(spindle, tmp_path):
    path = str(tmp_path / "app.sock")
    s = spindle("--socket", path, "--wsgi-file", example("hello.py"))
    assert s.uwsgi_addr == path
    r = uwsgi_request(path, uwsgi_vars("GET", "/"))
    assert r.status == 200 and r.body == b"Hello, World!\n"


def test_uwsgi_and_http_sockets_together(spindle):
    s = spindle("--socket", "127.0.0.1:0", "--http-socket", "127.0.0.1:0",
                "--wsgi-file", example("hello.py"))
    assert uwsgi_request(s.uwsgi_addr, uwsgi_vars("GET", "/")).body == b"Hello, World!\n"
    with RawConn(s.http_addr) as c:
        c.send(build_request("GET", "/", [("Connection", "close")]))
        assert c.read_response().body == b"Hello, World!\n"


# -- nginx in front -----------------------------------------------------------
# "/" goes to the probe app, "/v/..." to the validated apps with the prefix
# rewritten away (PATH_INFO comes from $document_uri, which the rewrite sets).

SERVERS = """\
    client_max_body_size 10m;
    server {
        listen unix:{d}/nginx.sock;
        server_name localhost;
        location /v/ {
            rewrite ^/v(/.*)$ $1 break;
            include {params};
            uwsgi_pass @VALIDATED@;
        }
        location / {
            include {params};
            uwsgi_pass @PROBE@;
        }
    }
"""


class Nginx:
    def __init__(self, sock, probe, validated):
        self.sock = sock
        self.probe = probe
        self.validated = validated


@pytest.fixture(scope="module")
def nginx(module_spindle, tmp_path_factory):
    probe = module_spindle("--socket", "127.0.0.1:0", "--wsgi-file", example("probe.py"),
                           name="probe-behind-nginx")
    validated = module_spindle("--socket", "127.0.0.1:0", "--wsgi-file", example("validated.py"),
                               name="validated-behind-nginx")
    d = tmp_path_factory.mktemp("nginx")
    servers = SERVERS.replace("@PROBE@", probe.uwsgi_addr).replace("@VALIDATED@",
                                                                   validated.uwsgi_addr)
    with nginx_front.running(d, servers, ["nginx.sock"], user=nginx_front.default_user(),
                             connections=64):
        yield Nginx(str(d / "nginx.sock"), probe, validated)


def via_nginx(ngx, method, path, headers=(), body=b""):
    with RawConn(ngx.sock, 15) as c:
        c.send(build_request(method, path, headers, body, extra=[("Connection", "close")]))
        return c.read_response(method)


def test_nginx_get(nginx):
    r = via_nginx(nginx, "GET", "/list")
    assert r.status == 200 and r.body == b"one two three\n"


def test_nginx_query_string_and_headers(nginx):
    r = via_nginx(nginx, "GET", "/headers?x=1&y=%2F", [("X-Through-Nginx", "yes")])
    assert r.status == 200
    env = json.loads(r.body)
    assert env["QUERY_STRING"] == "x=1&y=%2F"
    assert env["PATH_INFO"] == "/headers"
    assert env["HTTP_X_THROUGH_NGINX"] == "yes"
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SERVER_PROTOCOL"].startswith("HTTP/1.")


def test_nginx_post_body(nginx):
    body = os.urandom(300000)
    r = via_nginx(nginx, "POST", "/echo", [("Content-Type", "application/octet-stream")], body)
    assert r.status == 200
    assert r.body == body
    assert r.header("X-Content-Length") == str(len(body))
    assert r.header("X-Content-Type") == "application/octet-stream"


def test_nginx_generator_response(nginx):
    r = via_nginx(nginx, "GET", "/gen?n=50")
    assert r.status == 200
    assert r.body == b"".join(b"line %d\n" % i for i in range(50))


def test_nginx_large_streamed_response(nginx):
    n = 3 * 1024 * 1024 + 7
    r = via_nginx(nginx, "GET", "/big?n=%d" % n)
    assert r.status == 200 and len(r.body) == n


def test_nginx_several_requests(nginx):
    before = nginx.probe.log_offset()
    for i in range(20):
        r = via_nginx(nginx, "POST", "/echo", body=b"n%d" % i)
        assert r.status == 200 and r.body == b"n%d" % i
    nginx.probe.wait_for_log(r'ACCESS .*"POST /echo', count=20, after=before)


def test_nginx_validated_environ(nginx):
    r = via_nginx(nginx, "GET", "/v/env/some%20where?x=1", [("X-Through-Nginx", "yes")])
    assert r.status == 200, r
    env = json.loads(r.body)
    assert env["PATH_INFO"][1] == "/env/some where"
    assert env["SCRIPT_NAME"][1] == ""
    assert env["QUERY_STRING"][1] == "x=1"
    assert env["HTTP_X_THROUGH_NGINX"][1] == "yes"


def test_nginx_validated_post_and_generator(nginx):
    body = b"through nginx " * 1000
    r = via_nginx(nginx, "POST", "/v/echo", [("Content-Type", "text/plain")], body)
    assert r.status == 200 and r.body == body
    r = via_nginx(nginx, "GET", "/v/gen?6")
    assert r.status == 200
    assert r.body == b"".join(b"chunk %d\n" % i for i in range(6))


def test_nginx_exc_info_status(nginx):
    r = via_nginx(nginx, "GET", "/v/exc_info")
    assert r.status == 503 and r.body == b"replaced body\n"


def test_uwsgi_answers_leave_date_and_server_to_nginx(uprobe):
    r = uwsgi_request(uprobe.uwsgi_addr, uwsgi_vars("GET", "/list"))
    assert r.status == 200, r
    assert r.header("Date") is None and r.header("Server") is None


def test_nginx_does_not_pass_a_body_cut_short_off_as_whole(nginx):
    # The app raises after its first chunk. The uwsgi port's body is
    # delimited by the close: a clean close would make nginx end its chunked
    # answer with the terminator, and the client would take "partial\n" for
    # the whole body. The reset makes nginx cut the client's answer too.
    with RawConn(nginx.sock, 15) as c:
        c.send(build_request("GET", "/error_in_iter"))
        _, status, _, headers, _ = c.read_head()
        assert status == 200
        assert ("Transfer-Encoding", "chunked") in headers, headers
        with pytest.raises(ConnectionClosed):
            c._read_chunked(time.monotonic() + 15)
