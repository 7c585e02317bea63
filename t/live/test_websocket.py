"""WebSockets under every engine pairing, driven by real clients (Debian's
python3-websocket; python3-websockets where compression is negotiated).

uWSGI's API (uwsgi.websocket_handshake & co.): echo of text and binary, a
fragmented message with a ping between its fragments, ping answered by pong,
the close handshake, and the closes a broken peer earns (1002 unmasked, 1009
too big, 1007 not UTF-8).

The server's keep-alive (--websocket-ping-freq, --websocket-pong-tolerance),
spindle.websocket() (examples/websocket/room.py), a broadcast from one request
to the others' websockets with a slow client dropped, and permessage-deflate."""

import asyncio
import socket
import struct
import threading
import time
import zlib

import pytest
import websocket
from websocket import ABNF

from harness import example, pairing_args, pairing_names, wait_until

APP = example("websocket/echo.py")
CHAT = example("websocket/room.py")


@pytest.fixture(scope="module", params=pairing_names())
def server(request, module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", APP,
                          "--websocket-max-size", "1", *pairing_args(request.param, 8),
                          extra=False, name="ws-" + request.param)


def connect(srv, path="/"):
    return websocket.create_connection("ws://%s%s" % (srv.http_addr, path), timeout=15)


def close_frame(ws):
    """Reads frames until the server's close frame; returns (code, reason)."""
    for _ in range(10):
        op, data = ws.recv_data(control_frame=True)
        if op == ABNF.OPCODE_CLOSE:
            assert len(data) >= 2, data
            return struct.unpack("!H", data[:2])[0], data[2:]
    raise AssertionError("no close frame")


def test_echo_text_and_binary(server):
    ws = connect(server)
    try:
        for msg in ("hello", "h\u00e9llo \u2603", "x" * 1000):
            ws.send(msg)
            op, data = ws.recv_data()
            assert op == ABNF.OPCODE_TEXT and data.decode() == msg
    finally:
        ws.close()
    wb = connect(server, "/binary")
    try:
        payload = bytes(range(256)) * 3
        wb.send_binary(payload)
        op, data = wb.recv_data()
        assert op == ABNF.OPCODE_BINARY and data == payload
    finally:
        wb.close()


def test_recv_nb(server):
    ws = connect(server, "/nb")
    try:
        for i in range(5):
            ws.send("nb %d" % i)
            assert ws.recv() == "nb %d" % i
    finally:
        ws.close()


def test_fragments_with_a_ping_between(server):
    ws = connect(server)
    try:
        ws.send_frame(ABNF.create_frame("frag", ABNF.OPCODE_TEXT, fin=0))
        ws.send_frame(ABNF.create_frame("ment", ABNF.OPCODE_CONT, fin=0))
        ws.ping("mid")
        ws.send_frame(ABNF.create_frame("ed", ABNF.OPCODE_CONT, fin=1))
        op, data = ws.recv_data(control_frame=True)
        assert (op, data) == (ABNF.OPCODE_PONG, b"mid")
        op, data = ws.recv_data()
        assert (op, data) == (ABNF.OPCODE_TEXT, b"fragmented")
    finally:
        ws.close()


def test_ping_answered_with_pong(server):
    ws = connect(server)
    try:
        ws.ping("are you there")
        op, data = ws.recv_data(control_frame=True)
        assert (op, data) == (ABNF.OPCODE_PONG, b"are you there")
    finally:
        ws.close()


def test_close_handshake_echoes_the_code(server):
    ws = connect(server)
    ws.send_close(status=4001, reason=b"bye")
    assert close_frame(ws)[0] == 4001
    ws.shutdown()


def test_app_return_closes_with_1000(server):
    ws = connect(server, "/once")
    ws.send("only")
    assert ws.recv() == "only"
    assert close_frame(ws)[0] == 1000
    assert ws.sock.recv(1) == b""  # no keep-alive after an upgrade
    ws.shutdown()


def test_app_exception_closes_with_1011(server):
    ws = connect(server, "/raise")
    ws.send("boom")
    assert close_frame(ws)[0] == 1011
    ws.shutdown()
    server.wait_for_log(r"RuntimeError: websocket app failed on purpose")


def test_unmasked_frame_closes_1002(server):
    ws = connect(server)
    ws.sock.sendall(b"\x81\x02hi")
    assert close_frame(ws)[0] == 1002
    ws.shutdown()


def test_oversize_message_closes_1009(server):
    ws = connect(server)
    ws.send("y" * 1024)  # the limit itself passes
    assert len(ws.recv()) == 1024
    ws.send_frame(ABNF.create_frame("z" * 600, ABNF.OPCODE_TEXT, fin=0))
    ws.send_frame(ABNF.create_frame("z" * 600, ABNF.OPCODE_CONT, fin=1))
    assert close_frame(ws)[0] == 1009
    ws.shutdown()


def test_invalid_utf8_closes_1007(server):
    ws = connect(server)
    ws.send(b"ok \xc3", opcode=ABNF.OPCODE_TEXT)
    assert close_frame(ws)[0] == 1007
    ws.shutdown()


def test_a_broken_peer_takes_nothing_else_down(server):
    # A websocket that broke the protocol took nothing else down.
    ws = connect(server)
    ws.send("still here")
    assert ws.recv() == "still here"
    ws.close()


# --- keep-alive, spindle.websocket(), broadcast, deflate ---------------------

@pytest.fixture(scope="module", params=pairing_names())
def chat(request, module_spindle):
    # --socket-timeout 1: a websocket waiting in recv must outlive it.
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", CHAT,
                          "--websocket-ping-freq", "1", "--websocket-pong-tolerance", "1",
                          "--socket-timeout", "1", "--websocket-send-buffer", "64",
                          "--websocket-max-size", "64", "--websocket-deflate",
                          *pairing_args(request.param, 64),
                          extra=False, name="wschat-" + request.param)


def data_frame(ws):
    """The next text/binary message, answering and skipping the server's pings."""
    while True:
        op, data = ws.recv_data(control_frame=True)
        if op in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CLOSE):
            return op, data


def test_idle_websocket_lives_while_pings_are_answered(chat):
    ws = connect(chat, "/echo")
    try:
        pings, start = 0, time.monotonic()
        ws.settimeout(1.0)
        while time.monotonic() - start < 2.6:  # > --socket-timeout, two ping periods
            try:
                op, _ = ws.recv_data(control_frame=True)  # answers each ping
            except websocket.WebSocketTimeoutException:
                continue
            assert op == ABNF.OPCODE_PING
            pings += 1
        assert pings >= 2
        ws.settimeout(15)
        ws.send("still here")
        assert data_frame(ws) == (ABNF.OPCODE_TEXT, b"still here")
    finally:
        ws.close()


def test_silent_client_is_dropped_after_the_pong_tolerance(chat):
    ws = connect(chat, "/report")
    start = time.monotonic()
    got = b""
    ws.sock.settimeout(15)
    while True:  # raw bytes: nothing answers the ping
        chunk = ws.sock.recv(4096)
        if not chunk:
            break
        got += chunk
    elapsed = time.monotonic() - start
    assert got.startswith(b"\x89\x00"), got  # one empty ping, then the end
    assert elapsed >= 1.5, elapsed  # ping after 1 s idle, 1 s to answer
    chat.wait_for_log(r"websocket: no answer to a ping within 1 s; closing")
    # The app's recv() saw it closed, and a send raises.
    chat.wait_for_log(r"report: close_code=None closed=True send_raised=yes")


def test_object_api_echo_keeps_the_type(chat):
    ws = connect(chat, "/echo")
    try:
        ws.send("h\u00e9llo")
        assert data_frame(ws) == (ABNF.OPCODE_TEXT, "h\u00e9llo".encode())
        ws.send_binary(b"\x00\xffbin")
        assert data_frame(ws) == (ABNF.OPCODE_BINARY, b"\x00\xffbin")
    finally:
        ws.close()


def test_a_loop_callback_sends_on_a_websocket(chat):
    ws = connect(chat, "/later")
    try:
        assert data_frame(ws) == (ABNF.OPCODE_TEXT, b"from the loop")
        ws.send("after")
        assert data_frame(ws) == (ABNF.OPCODE_TEXT, b"after")
    finally:
        ws.close()


def test_another_threads_websocket_refuses_a_send(spindle):
    # One core per thread: the second websocket is served by the other thread.
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", CHAT, "--threads", "2",
                  "--async", "1", extra=False)
    first = connect(srv, "/cross")
    second = None
    try:
        assert data_frame(first) == (ABNF.OPCODE_TEXT, b"done")
        second = connect(srv, "/cross")
        op, data = data_frame(second)
        assert data.startswith(b"refused: WebSocket.send(): the websocket belongs to another "
                               b"serving thread"), data
        assert data_frame(second) == (ABNF.OPCODE_TEXT, b"done")
        first.settimeout(0.5)  # nothing reached the first client
        with pytest.raises(websocket.WebSocketTimeoutException):
            data_frame(first)
    finally:
        first.close()
        if second:
            second.close()


def test_recv_timeout_raises_timeout_error(chat):
    ws = connect(chat, "/timeout")
    try:
        assert data_frame(ws) == (ABNF.OPCODE_TEXT, b"timeout")
    finally:
        ws.close()


def test_subprotocol_is_chosen_from_the_offer(chat):
    ws = websocket.create_connection("ws://%s/proto" % chat.http_addr, timeout=15,
                                     subprotocols=["x-unknown", "superchat", "chat"])
    try:
        assert ws.getsubprotocol() == "superchat"
        assert data_frame(ws) == (ABNF.OPCODE_TEXT, b"superchat")
    finally:
        ws.close()
    ws = connect(chat, "/proto")  # nothing offered: none chosen, no header
    try:
        assert ws.getheaders().get("sec-websocket-protocol") is None
        assert data_frame(ws) == (ABNF.OPCODE_TEXT, b"none")
    finally:
        ws.close()


def test_server_close_with_code_and_reason(chat):
    ws = connect(chat, "/close")
    ws.send("go")
    assert close_frame(ws) == (4000, b"bye")
    ws.shutdown()


def test_client_close_code_is_seen_and_send_then_raises(chat):
    ws = connect(chat, "/report")
    ws.send("a")
    ws.send_close(status=4321, reason=b"done")
    assert close_frame(ws)[0] == 4321
    ws.shutdown()
    chat.wait_for_log(r"report: close_code=4321 closed=True send_raised=yes")


def test_broadcast_to_many_clients(chat):
    n = 20
    clients = []
    try:
        for i in range(n):
            ws = connect(chat, "/chat")
            op, data = data_frame(ws)
            assert data.startswith(b"joined ")
            clients.append(ws)
        # Everyone joined before the broadcast: the last saw the whole room.
        assert int(data.split()[1]) >= n
        clients[3].send("hello all")
        for ws in clients:
            assert data_frame(ws) == (ABNF.OPCODE_TEXT, b"hello all")
    finally:
        for ws in clients:
            ws.close()


def test_slow_reader_is_dropped_and_the_others_get_every_frame(chat):
    # A client that reads nothing, with a small receive window.
    slow = websocket.create_connection("ws://%s/chat" % chat.http_addr, timeout=15,
                                       sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    readers = [connect(chat, "/chat") for _ in range(3)]
    count, size = 200, 32768  # 6.4 MB: far more than the slow client's buffers hold
    errors = []

    def read_all(ws):
        try:
            for i in range(count):
                op, data = data_frame(ws)
                assert op == ABNF.OPCODE_BINARY and data == bytes([i % 256]) * size, i
        except Exception as e:  # reported below
            errors.append(repr(e))

    try:
        for ws in [slow] + readers:
            assert data_frame(ws)[1].startswith(b"joined ")
        threads = [threading.Thread(target=read_all, args=(ws,)) for ws in readers]
        for t in threads:
            t.start()
        readers[0].send("flood %d %d" % (count, size))
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert data_frame(readers[0]) == (ABNF.OPCODE_TEXT, b"flooded")
        chat.wait_for_log(r"chat: dropped a peer: the client reads too slowly")
        # The dropped client's connection ends once it has read what was sent.
        slow.sock.settimeout(15)
        while slow.sock.recv(65536):
            pass
    finally:
        for ws in [slow] + readers:
            ws.close()
    assert "Traceback" not in chat.log_text()


async def deflate_echo(addr, messages):
    import websockets
    async with websockets.connect("ws://%s/echo" % addr, compression="deflate",
                                  max_size=None) as ws:
        ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        out = []
        for m in messages:
            await ws.send(m)
            out.append(await ws.recv())
        return ext, out


def test_permessage_deflate_round_trip(chat):
    messages = ["short", "abc" * 5000, bytes(range(256)) * 50, "\u2603" * 3000]
    # Within --websocket-max-size (64 KiB) once inflated.
    ext, out = asyncio.run(deflate_echo(chat.http_addr, messages))
    assert ext.startswith("permessage-deflate") and "server_no_context_takeover" in ext
    assert out == messages


def test_deflate_bomb_closes_1009(chat):
    ws = websocket.create_connection("ws://%s/echo" % chat.http_addr, timeout=15,
                                     header=["Sec-WebSocket-Extensions: permessage-deflate"])
    assert "permessage-deflate" in ws.getheaders().get("sec-websocket-extensions", "")
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = z.compress(b"\0" * (8 << 20)) + z.flush(zlib.Z_SYNC_FLUSH)
    payload = payload[:-4]  # RFC 7692: the sender takes off 00 00 ff ff
    assert len(payload) < 64 * 1024  # it passes the size check compressed
    frame = ABNF(1, 1, 0, 0, ABNF.OPCODE_BINARY, 1, payload)  # RSV1: compressed
    ws.sock.sendall(frame.format())
    assert close_frame(ws)[0] == 1009
    ws.shutdown()


def test_no_deflate_unless_enabled(server):
    ws = websocket.create_connection("ws://%s/" % server.http_addr, timeout=15,
                                     header=["Sec-WebSocket-Extensions: permessage-deflate"])
    try:
        assert ws.getheaders().get("sec-websocket-extensions") is None
        ws.send("plain")
        assert ws.recv() == "plain"
    finally:
        ws.close()


@pytest.mark.parametrize("sig", ["SIGHUP", "SIGTERM"])
def test_stopping_worker_closes_its_websockets_with_1001(spindle, sig):
    """A graceful reload or stop does not wait out the mercy for open
    websockets: each gets a close 1001 (going away), the app's recv sees the
    websocket closed and returns, and the worker goes."""
    import signal
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--async", "4",
                  "--worker-reload-mercy", "60", extra=False)
    before = set(srv.worker_pids().values())
    socks = [connect(srv) for _ in range(3)]
    try:
        for ws in socks:
            ws.send("before")
            assert ws.recv_data()[1] == b"before"
        start = time.monotonic()
        srv.signal(getattr(signal, sig))
        for ws in socks:
            code, _ = close_frame(ws)
            assert code == 1001, code
        # Well inside the 60 s mercy: the close came from the drain.
        assert time.monotonic() - start < 30
    finally:
        for ws in socks:
            ws.close()
    if sig == "SIGHUP":
        wait_until(lambda: set(srv.worker_pids().values()) - before, 30, what="new worker")
        ws = connect(srv)
        try:
            ws.send("after")
            assert ws.recv_data()[1] == b"after"
        finally:
            ws.close()
    else:
        wait_until(lambda: srv.proc.poll() is not None, 30, what="the server's exit")
