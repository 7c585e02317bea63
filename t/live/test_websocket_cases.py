"""RFC 6455 conformance cases in the manner of the Autobahn fuzzing client
(which Debian does not ship), written as tables over raw frames
(t/live/wsframes.py) against examples/websocket/echo.py, under every engine
pairing: framing at every length boundary, pings, reserved bits and opcodes,
fragmentation, UTF-8 (whole and split at every byte), close codes and
reasons, masking, the size limit. test_websocket.py has the basic cases
(echo, one ping, one fragmented message, 1002 unmasked text, 1009 over the
limit, 1007 truncated UTF-8); these are the rest."""

import base64
import os
import socket
import struct

import pytest

from harness import RawConn, example, pairing_args, pairing_names
from wsframes import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RawWebSocket,
                      accept_for, close_frame, frame, handshake_request, pong_for)

APP = example("websocket/echo.py")
MAX_KB = 256
CORES = 8


@pytest.fixture(scope="module", params=pairing_names())
def server(request, module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", APP,
                          "--websocket-max-size", str(MAX_KB), *pairing_args(request.param, CORES),
                          extra=False, name="wscases-" + request.param)


OPEN = []


@pytest.fixture(autouse=True)
def close_leftovers():
    """A failed test's websockets are closed too: each holds a core."""
    yield
    while OPEN:
        OPEN.pop().close()


def connect(srv, path="/"):
    ws = RawWebSocket.connect(srv.http_addr, path)
    OPEN.append(ws)
    return ws


def expect_close(ws, code):
    """The server's close frame carries `code`, then the TCP connection ends."""
    try:
        assert ws.close_code() == code
        assert ws.wait_eof(), "connection still open after the close frame"
    finally:
        ws.close()


def echo_round(ws, op, payload):
    ws.send(frame(op, payload))
    assert ws.read_message() == (op, payload)


# -- framing: every length encoding and its boundaries ------------------------

SIZES = [0, 1, 125, 126, 127, 128, 65535, 65536, 65537, 200000]


@pytest.mark.parametrize("size", SIZES)
def test_framing_lengths(server, size):
    """Text and binary echoes of `size` bytes: the server's frame uses the
    minimal length form (7-bit up to 125, 16-bit up to 65535, then 64-bit)."""
    text = (b"abcdefghij" * (size // 10 + 1))[:size]
    want_form = "7" if size < 126 else "16" if size <= 0xFFFF else "64"
    ws = connect(server)
    echo_round(ws, OP_TEXT, text)
    assert ws.length_forms[-1] == want_form
    ws.close()
    wb = connect(server, "/binary")
    echo_round(wb, OP_BINARY, os.urandom(size))
    assert wb.length_forms[-1] == want_form
    wb.close()


@pytest.mark.parametrize("size,piece", [(65536, 997), (300, 1), (126, 2), (70000, 65536)])
def test_frame_arrives_in_pieces(server, size, piece):
    """A frame (header included) cut into `piece`-byte writes."""
    payload = os.urandom(size)
    wb = connect(server, "/binary")
    wb.send_in_pieces(frame(OP_BINARY, payload), piece)
    assert wb.read_message() == (OP_BINARY, payload)
    wb.close()


def test_many_frames_in_one_write(server):
    wb = connect(server, "/binary")
    msgs = [os.urandom(n) for n in (0, 5, 125, 126, 1000, 65536)]
    wb.send(b"".join(frame(OP_BINARY, m) for m in msgs))
    for m in msgs:
        assert wb.read_message() == (OP_BINARY, m)
    wb.close()


@pytest.mark.parametrize("form,length", [("16", 5), ("16", 125), ("64", 100), ("64", 65535)],
                         ids=["16bit-5", "16bit-125", "64bit-100", "64bit-65535"])
def test_non_minimal_length_1002(server, form, length):
    ws = connect(server)
    ws.send(frame(OP_TEXT, b"x" * length, length_form=form))
    expect_close(ws, 1002)


def test_64bit_length_with_top_bit_1002(server):
    ws = connect(server)
    ws.send(frame(OP_BINARY, b"", length=1 << 63))
    expect_close(ws, 1002)


# -- pings and pongs ---------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 125])
def test_ping_payload_echoed_in_pong(server, size):
    payload = os.urandom(size)
    ws = connect(server)
    ws.send(frame(OP_PING, payload))
    assert pong_for(ws) == payload
    ws.close()


def test_ping_payload_126_1002(server):
    ws = connect(server)
    ws.send(frame(OP_PING, b"p" * 126))
    expect_close(ws, 1002)


@pytest.mark.parametrize("op", [OP_PING, OP_PONG, OP_CLOSE], ids=["ping", "pong", "close"])
def test_fragmented_control_frame_1002(server, op):
    ws = connect(server)
    ws.send(frame(op, b"", fin=False))
    expect_close(ws, 1002)


def test_unsolicited_pongs_are_ignored(server):
    ws = connect(server)
    ws.send(frame(OP_PONG, b"") + frame(OP_PONG, b"unasked") + frame(OP_TEXT, b"after pongs"))
    assert ws.read_message() == (OP_TEXT, b"after pongs")
    ws.close()


def test_ten_pings_ten_pongs_in_order(server):
    ws = connect(server)
    ws.send(b"".join(frame(OP_PING, b"ping %d" % i) for i in range(10)))
    assert [pong_for(ws) for _ in range(10)] == [b"ping %d" % i for i in range(10)]
    ws.close()


def test_ping_sent_in_one_byte_pieces(server):
    ws = connect(server)
    ws.send_in_pieces(frame(OP_PING, b"slowly"), 1)
    assert pong_for(ws) == b"slowly"
    ws.close()


# -- reserved bits and opcodes -----------------------------------------------

@pytest.mark.parametrize("rsv", range(1, 8))
@pytest.mark.parametrize("op", [OP_TEXT, OP_BINARY, OP_PING, OP_CLOSE],
                         ids=["text", "binary", "ping", "close"])
def test_reserved_bits_1002(server, rsv, op):
    ws = connect(server)
    payload = struct.pack("!H", 1000) if op == OP_CLOSE else b"rsv"
    ws.send(frame(op, payload, rsv=rsv))
    expect_close(ws, 1002)


def echo_at_most_then_close(ws, echo, code):
    """The frames sent had a good message then a bad frame: the good one's
    echo may come (when the app took it before the bad frame was read) or
    not (when the server read ahead), then the close with `code`; nothing
    after the bad frame is answered."""
    msgs, got = ws.until_close()
    assert msgs in ([], [echo]) and got == code, (msgs, got)
    assert ws.wait_eof()


def test_reserved_bits_after_a_good_message(server):
    ws = connect(server)
    ws.send(frame(OP_TEXT, b"good") + frame(OP_TEXT, b"bad", rsv=4) + frame(OP_PING, b"late"))
    echo_at_most_then_close(ws, (OP_TEXT, b"good"), 1002)


@pytest.mark.parametrize("op", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcode_1002(server, op):
    ws = connect(server)
    ws.send(frame(op, b"" if op & 8 else b"reserved"))
    expect_close(ws, 1002)


def test_unmasked_ping_1002(server):
    ws = connect(server)
    ws.send(frame(OP_PING, b"bare", mask=False))
    expect_close(ws, 1002)


# -- fragmentation ------------------------------------------------------------

def fragments(op, parts):
    """Frames carrying one message in `parts` (the first with `op`)."""
    out = []
    for i, p in enumerate(parts):
        out.append(frame(op if i == 0 else OP_CONT, p, fin=i == len(parts) - 1))
    return out


def test_one_byte_fragments_with_pings_between(server):
    msg = b"Hello, fragmented world"
    ws = connect(server)
    out = b""
    for i, f in enumerate(fragments(OP_TEXT, [msg[k:k + 1] for k in range(len(msg))])):
        out += frame(OP_PING, b"%d" % i) + f
    ws.send(out)
    pongs = [pong_for(ws) for _ in range(len(msg))]
    assert pongs == [b"%d" % i for i in range(len(msg))]
    assert ws.read_message() == (OP_TEXT, msg)
    ws.close()


def test_empty_fragments(server):
    ws = connect(server, "/binary")
    ws.send(b"".join(fragments(OP_BINARY, [b"", b"", b"data", b"", b""])))
    assert ws.read_message() == (OP_BINARY, b"data")
    ws.send(b"".join(fragments(OP_BINARY, [b"", b""])))
    assert ws.read_message() == (OP_BINARY, b"")
    ws.close()


@pytest.mark.parametrize("fin", [True, False], ids=["final", "not-final"])
def test_continuation_without_a_message_1002(server, fin):
    ws = connect(server)
    ws.send(frame(OP_CONT, b"orphan", fin=fin))
    expect_close(ws, 1002)


def test_continuation_after_a_finished_message_1002(server):
    ws = connect(server)
    ws.send(frame(OP_TEXT, b"done") + frame(OP_CONT, b"more"))
    echo_at_most_then_close(ws, (OP_TEXT, b"done"), 1002)


@pytest.mark.parametrize("second", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_new_message_inside_a_fragmented_one_1002(server, second):
    ws = connect(server)
    ws.send(frame(OP_TEXT, b"first ", fin=False) + frame(second, b"second"))
    expect_close(ws, 1002)


# -- UTF-8 ----------------------------------------------------------------------

GREEK = "\u03ba\u1f79\u03c3\u03bc\u03b5".encode()  # kosme, 2- and 3-byte forms
VALID_UTF8 = {
    "greek": GREEK,
    "four-byte": "\U0001F600 \U0010FFFF".encode(),
    "boundaries": "\u0080\u07ff\u0800\ud7ff\ue000\ufffd\uffff\U00010000".encode(
        "utf-8", "surrogatepass"),
}
INVALID_UTF8 = {
    "lone-continuation": b"a\x80b",
    "overlong-2": b"\xc0\xaf",
    "overlong-3": b"\xe0\x80\xaf",
    "overlong-4": b"\xf0\x80\x80\xaf",
    "surrogate-high": b"\xed\xa0\x80",
    "surrogate-low": b"\xed\xbf\xbf",
    "past-10ffff": b"\xf4\x90\x80\x80",
    "byte-fe": b"ok\xfe",
    "byte-ff": b"\xff",
    "cut-3-byte": b"\xe2\x82 then ascii",
    "greek-then-bad": GREEK + b"\xed\xa0\x80edited",
}


@pytest.mark.parametrize("name", sorted(VALID_UTF8))
def test_valid_utf8_split_at_every_byte(server, name):
    """The message split into two fragments at each byte (code points cut
    in half included) and into one fragment per byte is still echoed."""
    data = VALID_UTF8[name]
    ws = connect(server)
    echo_round(ws, OP_TEXT, data)
    for k in range(1, len(data)):
        ws.send(b"".join(fragments(OP_TEXT, [data[:k], data[k:]])))
        assert ws.read_message() == (OP_TEXT, data)
    ws.send(b"".join(fragments(OP_TEXT, [data[k:k + 1] for k in range(len(data))])))
    assert ws.read_message() == (OP_TEXT, data)
    ws.close()


@pytest.mark.parametrize("name", sorted(INVALID_UTF8))
def test_invalid_utf8_1007(server, name):
    ws = connect(server)
    ws.send(frame(OP_TEXT, INVALID_UTF8[name]))
    expect_close(ws, 1007)


@pytest.mark.parametrize("name", sorted(INVALID_UTF8))
def test_invalid_utf8_in_fragments_1007(server, name):
    """Split at every byte boundary (one connection per split)."""
    data = INVALID_UTF8[name]
    for k in range(1, len(data)):
        ws = connect(server)
        ws.send(b"".join(fragments(OP_TEXT, [data[:k], data[k:]])))
        expect_close(ws, 1007)


def test_invalid_utf8_fails_before_the_message_ends(server):
    """The bad byte is in the first fragment; the rest never comes, yet the
    close 1007 does (no waiting for the end of the message)."""
    ws = connect(server)
    ws.send(frame(OP_TEXT, GREEK + b"\xf4\x90\x80\x80", fin=False))
    expect_close(ws, 1007)


def test_binary_is_not_checked_as_utf8(server):
    ws = connect(server, "/binary")
    echo_round(ws, OP_BINARY, b"\xff\xfe\xed\xa0\x80")
    ws.close()


# -- the close handshake ------------------------------------------------------

# RFC 6455's codes, the three IANA registered later (1012 service restart,
# 1013 try again later, 1014 bad gateway), registered and private ones.
VALID_CLOSE = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
               3999, 4000, 4999]
INVALID_CLOSE = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("code", VALID_CLOSE)
def test_valid_close_code_echoed(server, code):
    ws = connect(server)
    ws.send(close_frame(code, b"reason"))
    expect_close(ws, code)


@pytest.mark.parametrize("code", INVALID_CLOSE)
def test_invalid_close_code_1002(server, code):
    ws = connect(server)
    ws.send(close_frame(code))
    expect_close(ws, 1002)


def test_close_without_payload(server):
    """An empty close is answered with an empty one or 1000."""
    ws = connect(server)
    ws.send(close_frame())
    try:
        assert ws.close_code() in (None, 1000)
        assert ws.wait_eof()
    finally:
        ws.close()


def test_close_payload_of_one_byte_1002(server):
    ws = connect(server)
    ws.send(frame(OP_CLOSE, b"\x03"))
    expect_close(ws, 1002)


def test_close_reason_of_123_bytes(server):
    ws = connect(server)
    ws.send(close_frame(1000, "\u00e9".encode() * 61 + b"x"))
    expect_close(ws, 1000)


@pytest.mark.parametrize("reason", [b"\xff", b"bye \xed\xa0\x80", b"cut \xe2\x82"],
                         ids=["ff", "surrogate", "cut"])
def test_close_reason_not_utf8_1007(server, reason):
    ws = connect(server)
    ws.send(close_frame(1000, reason))
    expect_close(ws, 1007)


def test_close_in_the_middle_of_a_fragmented_message(server):
    ws = connect(server)
    ws.send(frame(OP_TEXT, b"never ", fin=False) + close_frame(1000))
    expect_close(ws, 1000)


def test_nothing_is_answered_after_the_close(server):
    """Frames after the client's close get no echo: the close comes, then EOF."""
    ws = connect(server)
    ws.send(close_frame(1000) + frame(OP_TEXT, b"too late") + frame(OP_PING, b"late"))
    try:
        op, data, _ = ws.read_frame()
        assert op == OP_CLOSE and data[:2] == struct.pack("!H", 1000)
        assert ws.wait_eof()
        assert ws.conn.buf == b"", "frames after the close: %r" % ws.conn.buf
    finally:
        ws.close()


# -- the size limit -----------------------------------------------------------

def test_announced_length_over_the_limit_1009_at_once(server):
    """A header announcing more than --websocket-max-size is refused before
    any of its payload arrives."""
    ws = connect(server)
    ws.send(frame(OP_BINARY, b"", length=1 << 40))
    expect_close(ws, 1009)


def test_the_limit_itself_passes(server):
    payload = os.urandom(MAX_KB * 1024)
    wb = connect(server, "/binary")
    echo_round(wb, OP_BINARY, payload)
    wb.send(b"".join(fragments(OP_BINARY, [payload[:1000], payload[1000:]])))
    assert wb.read_message() == (OP_BINARY, payload)
    wb.send(frame(OP_BINARY, payload + b"!"))
    expect_close(wb, 1009)


# -- the handshake ------------------------------------------------------------

@pytest.mark.parametrize("offer,answer", [
    (None, None), ("chat", "chat"), ("chat, superchat", "chat"), ("v2.chat,v1.chat", "v2.chat"),
], ids=["none", "one", "two", "two-no-space"])
def test_uwsgi_handshake_answers_one_subprotocol(server, offer, answer):
    """uwsgi.websocket_handshake() without a protocol answers with the
    client's first one: the answer must name a single subprotocol the client
    offered (a list in it fails the connection in browsers)."""
    extra = [("Sec-WebSocket-Protocol", offer)] if offer else []
    ws = RawWebSocket.connect(server.http_addr, "/", extra=extra)
    OPEN.append(ws)
    assert ws.headers.get("sec-websocket-protocol") == answer
    echo_round(ws, OP_TEXT, b"after the handshake")


# -- delivery and departures ----------------------------------------------------

def test_frames_in_the_handshake_write(server):
    """Frames sent in the same write as the request head are read as frames."""
    key = base64.b64encode(os.urandom(16)).decode()
    conn = RawConn(server.http_addr, 15)
    conn.send(handshake_request("localhost", "/", key) + frame(OP_PING, b"early") +
              frame(OP_TEXT, b"early text"))
    _, status, _, headers, _ = conn.read_head()
    assert status == 101 and ("Sec-WebSocket-Accept", accept_for(key)) in headers
    ws = RawWebSocket(conn)
    OPEN.append(ws)
    assert pong_for(ws) == b"early"
    assert ws.read_message() == (OP_TEXT, b"early text")
    ws.close()


def test_recv_nb_sees_a_message_trickle_in(server):
    """websocket_recv_nb() with a fragmented message arriving a byte at a
    time, pings in between: nothing half-done is returned."""
    ws = connect(server, "/nb")
    out = b""
    for f in fragments(OP_TEXT, [GREEK[:3], GREEK[3:7], GREEK[7:]]):
        out += frame(OP_PING, b"nb") + f
    ws.send_in_pieces(out, 1)
    for _ in range(3):
        assert pong_for(ws) == b"nb"
    assert ws.read_message() == (OP_TEXT, GREEK)
    ws.close()


@pytest.mark.parametrize("how", ["reset", "half-close", "eof-mid-frame"])
def test_clients_that_vanish_free_their_cores(server, how):
    """As many websockets as the worker has cores go away without a close
    frame; then as many new ones are all served at once."""
    for _ in range(CORES):
        ws = connect(server)
        s = ws.conn.sock
        if how == "eof-mid-frame":
            ws.send(frame(OP_TEXT, b"x" * 1000)[:500])
        if how == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if how == "half-close":
            s.shutdown(socket.SHUT_WR)
            # The server ends the connection (a close frame first, if any, is 1000).
            assert ws.until_close()[1] in ("eof", 1000)
        ws.close()
    fresh = [connect(server) for _ in range(CORES)]
    for i, ws in enumerate(fresh):
        ws.send(frame(OP_TEXT, b"fresh %d" % i))
    for i, ws in enumerate(fresh):
        assert ws.read_message() == (OP_TEXT, b"fresh %d" % i)
        ws.close()
