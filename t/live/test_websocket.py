"""WebSockets through uWSGI's API (uwsgi.websocket_handshake & co.), driven
by a real client (Debian's python3-websocket), under every engine pairing:
echo of text and binary, a fragmented message with a ping between its
fragments, ping answered by pong, the close handshake, and the closes a
broken peer earns (1002 unmasked, 1009 too big, 1007 not UTF-8)."""

import struct

import pytest
import websocket
from websocket import ABNF

from harness import example, pairing_args, pairing_names

APP = example("websocket/echo.py")


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
