"""WebSockets behind the real nginx, configured as uWSGI's docs and nginx's
own docs tell users to: `proxy_pass` to spindle's HTTP socket with
`proxy_http_version 1.1` and the Upgrade/Connection headers passed on, and
plain `uwsgi_pass` to spindle's uwsgi socket (nginx's uwsgi module relays a
101 from the backend like its proxy module does, no extra config). On the
uwsgi socket spindle answers the handshake as uWSGI does there: an HTTP
`101` head written back on the uwsgi connection, then frames both ways."""

import asyncio
import base64
import os

import pytest
import websockets

import nginx_front
from harness import RawConn, example, uwsgi_packet, uwsgi_vars
from wsframes import (OP_BINARY, OP_PING, OP_TEXT, RawWebSocket, accept_for, close_frame, frame,
                      pong_for)

SERVERS = """\
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }
    server {
        listen unix:{d}/proxy.sock;
        location / {
            proxy_pass http://@HTTP@;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $host;
        }
    }
    server {
        listen unix:{d}/uwsgi.sock;
        location / {
            include {params};
            uwsgi_pass @UWSGI@;
        }
    }
"""


@pytest.fixture(scope="module")
def backend(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--socket", "127.0.0.1:0",
                          "--wsgi-file", example("websocket/echo.py"), "--async", "16",
                          "--fibers", name="ws-behind-nginx")


@pytest.fixture(scope="module")
def nginx(backend, tmp_path_factory):
    """{"proxy": unix socket path, "uwsgi": unix socket path}"""
    d = tmp_path_factory.mktemp("nginx-ws")
    servers = SERVERS.replace("@HTTP@", backend.http_addr).replace("@UWSGI@", backend.uwsgi_addr)
    with nginx_front.running(d, servers, ["proxy.sock", "uwsgi.sock"],
                             user=nginx_front.default_user()):
        yield {"proxy": str(d / "proxy.sock"), "uwsgi": str(d / "uwsgi.sock")}


FRONTS = ["proxy", "uwsgi"]


@pytest.mark.parametrize("front", FRONTS)
def test_raw_echo_through_nginx(nginx, front):
    """Handshake (accept key checked), text and binary echo, a ping, a large
    frame, then the close code, all relayed by nginx."""
    ws = RawWebSocket.connect(nginx[front], "/")
    try:
        ws.send(frame(OP_TEXT, "through nginx \u2603"))
        assert ws.read_message() == (OP_TEXT, "through nginx \u2603".encode())
        ws.send(frame(OP_PING, b"nginx ping"))
        assert pong_for(ws) == b"nginx ping"
        big = os.urandom(300000).hex().encode()
        ws.send(frame(OP_TEXT, big))
        assert ws.read_message() == (OP_TEXT, big)
        ws.send(close_frame(4005, b"done"))
        assert ws.close_code() == 4005
        assert ws.wait_eof()
    finally:
        ws.close()
    wb = RawWebSocket.connect(nginx[front], "/binary")
    try:
        blob = os.urandom(70000)
        wb.send(frame(OP_BINARY, blob))
        assert wb.read_message() == (OP_BINARY, blob)
    finally:
        wb.close()


@pytest.mark.parametrize("front", FRONTS)
def test_websockets_client_through_nginx(nginx, front):
    """python3-websockets over nginx's unix socket: 10 clients at once."""
    async def client(i):
        async with websockets.unix_connect(nginx[front], "ws://localhost/", compression=None,
                                           ping_interval=None, open_timeout=15) as ws:
            for k in range(10):
                await ws.send("c%d m%d" % (i, k))
                assert await ws.recv() == "c%d m%d" % (i, k)
            await ws.ping(b"x")
        return i

    async def go():
        return await asyncio.gather(*(client(i) for i in range(10)))
    assert asyncio.run(asyncio.wait_for(go(), 60)) == list(range(10))


@pytest.mark.parametrize("front", FRONTS)
def test_protocol_error_reaches_the_client_through_nginx(nginx, front):
    ws = RawWebSocket.connect(nginx[front], "/")
    try:
        ws.send(frame(OP_TEXT, b"\xff"))
        assert ws.close_code() == 1007
        assert ws.wait_eof()
    finally:
        ws.close()


def test_uwsgi_socket_answers_the_upgrade_with_an_http_101(backend):
    """What nginx's uwsgi module sees: a uwsgi packet with the client's
    Upgrade headers in, an HTTP/1.1 101 head out on the same connection (as
    uWSGI writes it), then websocket frames both ways."""
    key = base64.b64encode(os.urandom(16)).decode()
    v = uwsgi_vars("GET", "/", headers=[("HTTP_UPGRADE", "websocket"),
                                        ("HTTP_CONNECTION", "Upgrade"),
                                        ("HTTP_SEC_WEBSOCKET_KEY", key),
                                        ("HTTP_SEC_WEBSOCKET_VERSION", "13")])
    conn = RawConn(backend.uwsgi_addr, 15)
    try:
        conn.send(uwsgi_packet(v) + frame(OP_TEXT, b"sent with the request"))
        version, status, _, headers, _ = conn.read_head()
        h = {k.lower(): val for k, val in headers}
        assert (version, status) == ("HTTP/1.1", 101)
        assert h["upgrade"].lower() == "websocket" and h["connection"].lower() == "upgrade"
        assert h["sec-websocket-accept"] == accept_for(key)
        ws = RawWebSocket(conn)
        assert ws.read_message() == (OP_TEXT, b"sent with the request")
        ws.send(close_frame(1000))
        assert ws.close_code() == 1000
    finally:
        conn.close()



@pytest.mark.parametrize("front", FRONTS)
def test_server_side_close_through_nginx(nginx, front):
    """The app returns after one message: its close 1000 reaches the client
    and nginx then ends the client's connection."""
    ws = RawWebSocket.connect(nginx[front], "/once")
    try:
        ws.send(frame(OP_TEXT, b"just once"))
        assert ws.read_message() == (OP_TEXT, b"just once")
        assert ws.close_code() == 1000
        assert ws.wait_eof()
    finally:
        ws.close()
