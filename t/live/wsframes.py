"""A raw RFC 6455 client for the websocket tests that must send what no
library will (reserved bits, bad opcodes, unmasked or non-minimal frames,
invalid UTF-8, bad close codes) and see every byte the server answers.

    ws = RawWebSocket.connect(addr, "/")       # handshake checked
    ws.send(frame(OP_TEXT, b"hi"))               # one masked frame
    op, payload, fin = ws.read_frame()           # server frames checked
    assert ws.close_code() == 1002               # until the close frame
"""

import base64
import hashlib
import os
import struct
import time

from harness import ConnectionClosed, RawConn

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length_form=None, length=None):
    """One client frame. rsv: the 3 reserved bits (0-7). length_form forces
    the length encoding ("7", "16", "64") even when not minimal; length
    overrides the announced length (the payload sent stays as given)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    out = bytearray([(0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0xF)])
    m = 0x80 if mask else 0
    form = length_form or ("7" if n < 126 else "16" if n <= 0xFFFF else "64")
    if form == "7":
        out.append(m | n)
    elif form == "16":
        out += bytes([m | 126]) + struct.pack("!H", n)
    else:
        out += bytes([m | 127]) + struct.pack("!Q", n)
    if not mask:
        return bytes(out) + payload
    key = os.urandom(4)
    out += key
    return bytes(out) + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def close_frame(code=None, reason=b""):
    payload = b"" if code is None else struct.pack("!H", code) + reason
    return frame(OP_CLOSE, payload)


def handshake_request(host, path, key, extra=()):
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % host, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key, "Sec-WebSocket-Version: 13"]
    lines += ["%s: %s" % kv for kv in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


class ServerClosed(Exception):
    pass


class RawWebSocket:
    """A websocket over RawConn, after a checked 101."""

    def __init__(self, conn, headers=None):
        self.conn = conn
        self.headers = headers or {}  # the 101's fields, names lowercased
        self.length_forms = []  # the length encoding of each server frame read

    @classmethod
    def connect(cls, addr, path="/", timeout=15.0, extra=()):
        conn = RawConn(addr, timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        conn.send(handshake_request("localhost", path, key, extra))
        _, status, _, headers, _ = conn.read_head()
        h = {k.lower(): v for k, v in headers}
        assert status == 101, (status, headers)
        assert h.get("upgrade", "").lower() == "websocket", headers
        assert h.get("sec-websocket-accept") == accept_for(key), headers
        return cls(conn, h)

    def send(self, data):
        self.conn.send(data)

    def send_in_pieces(self, data, size):
        for i in range(0, len(data), size):
            self.conn.send(data[i:i + size])

    def _exact(self, n, deadline):
        try:
            return self.conn._read_exact(n, deadline)
        except ConnectionClosed:
            raise ServerClosed("connection closed by the server")

    def read_frame(self, timeout=15.0):
        """(opcode, payload, fin) of the server's next frame, which must be
        unmasked with its reserved bits clear and its length minimal."""
        deadline = time.monotonic() + timeout
        b0, b1 = self._exact(2, deadline)
        assert b0 & 0x70 == 0, "server frame with reserved bits: %#x" % b0
        assert b1 & 0x80 == 0, "server frame is masked"
        n = b1 & 0x7F
        form = "7"
        if n == 126:
            n = struct.unpack("!H", self._exact(2, deadline))[0]
            form = "16"
            assert n >= 126, "non-minimal 16-bit length %d" % n
        elif n == 127:
            n = struct.unpack("!Q", self._exact(8, deadline))[0]
            form = "64"
            assert n > 0xFFFF, "non-minimal 64-bit length %d" % n
        self.length_forms.append(form)
        return b0 & 0x0F, self._exact(n, deadline), bool(b0 & 0x80)

    def read_message(self, timeout=15.0):
        """(opcode, payload) of the next data message; pongs are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            op, data, fin = self.read_frame(deadline - time.monotonic())
            if op == OP_PONG:
                continue
            assert fin, "the server fragments nothing"
            assert op != OP_CLOSE, "close %r where a message was expected" % data
            return op, data

    def close_code(self, timeout=15.0):
        """Reads to the server's close frame; returns its code (None when it
        has no payload). Data frames before it are skipped."""
        deadline = time.monotonic() + timeout
        for _ in range(10000):
            op, data, _ = self.read_frame(deadline - time.monotonic())
            if op == OP_CLOSE:
                assert len(data) != 1, "1-byte close payload"
                return struct.unpack("!H", data[:2])[0] if data else None
        raise AssertionError("no close frame")

    def until_close(self, timeout=15.0):
        """Reads to the end: ([(opcode, payload) of the data messages], the
        close frame's code, or "eof" when the connection ended without a
        close frame). Pongs are skipped."""
        deadline = time.monotonic() + timeout
        msgs = []
        for _ in range(10000):
            try:
                op, data, _ = self.read_frame(deadline - time.monotonic())
            except ServerClosed:
                return msgs, "eof"
            if op == OP_CLOSE:
                assert len(data) != 1, "1-byte close payload"
                return msgs, struct.unpack("!H", data[:2])[0] if data else None
            if op != OP_PONG:
                msgs.append((op, data))
        raise AssertionError("no end")

    def wait_eof(self, timeout=15.0):
        """True when the server closes the TCP connection (anything it
        still sends is dropped)."""
        return self.conn.wait_closed(timeout)

    def close(self):
        self.conn.close()


def pong_for(ws, timeout=15.0):
    op, data, fin = ws.read_frame(timeout)
    assert op == OP_PONG and fin, (op, data)
    return data


def sock_is_open(ws, seconds):
    return ws.conn.is_open_after(seconds)

