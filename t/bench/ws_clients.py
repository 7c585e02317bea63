#!/usr/bin/python3
"""Many websocket clients in one process, driven over stdin/stdout.

The websocket rows (ws_rows.py) need 10,000 open websockets on one server,
more than a process should hold beside everything else, so they start a few
of these processes (a `Fleet`) and split the sockets between them. Each one
opens its share with plain non-blocking sockets and epoll (a minimal RFC 6455
client: the upgrade request, the Sec-WebSocket-Accept check, masked frames
out, unmasked frames in, pings answered with pongs), reports how many are
open, then obeys one-line JSON commands on stdin and answers with one JSON
line on stdout:

    {"cmd": "arm"}                   forget who got a message; answers {"armed": n}
    {"cmd": "send", "text": "go"}    sends a text message on the first socket
                                     (the sender); answers {"t0": wall clock}
    {"cmd": "wait", "timeout": s}    answers once every open socket got a message
                                     since "arm" (or at the timeout): counts, and
                                     the first and last arrival times
    {"cmd": "quit"}                  closes every socket and exits

Arrival is timed twice: when this process read the message (`last_app`),
and when the kernel queued it on the socket (`last_kernel`, SO_TIMESTAMPNS).
The kernel's time does not depend on how fast these clients are, so it is
the figure the rows use; both are wall-clock (CLOCK_REALTIME) seconds.

    ws_clients.py --port P --count N [--path /]
"""

from __future__ import annotations

import argparse
import base64
import errno
import hashlib
import json
import os
import resource
import select
import socket
import struct
import sys
import time

HOST = "127.0.0.1"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; Python names neither
ANC = socket.CMSG_SPACE(16)
IN_FLIGHT = 200        # connects + handshakes under way at once (keeps backlogs short)
OPEN_TIMEOUT_S = 60.0


def frame(text: bytes, opcode: int = 1) -> bytes:
    """One masked client frame (payloads under 126 bytes are all this sends)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
    return bytes([0x80 | opcode, 0x80 | len(text)]) + mask + body


class Conn:
    __slots__ = ("sock", "state", "key", "buf", "got_kernel", "got_app")

    def __init__(self, sock: socket.socket, key: bytes):
        self.sock, self.state, self.key, self.buf = sock, "connect", key, b""
        self.got_kernel = self.got_app = None


class Clients:
    def __init__(self, port: int, count: int, path: str):
        self.port, self.count, self.path = port, count, path
        self.ep = select.epoll()
        self.conns: dict[int, Conn] = {}
        self.order: list[Conn] = []  # in opening order: order[0] is the sender
        self.open = self.failed = self.closed = 0
        self.first_error = ""
        self.armed = False
        self.got = 0

    # -- opening ------------------------------------------------------------
    def start_one(self, path: str) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        key = base64.b64encode(os.urandom(16))
        c = Conn(s, key)
        c.buf = (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: ").encode() + key + b"\r\n\r\n"
        self.order.append(c)
        err = s.connect_ex((HOST, self.port))
        if err not in (0, errno.EINPROGRESS):
            self.fail(c, os.strerror(err))
            return
        self.conns[s.fileno()] = c
        self.ep.register(s.fileno(), select.EPOLLOUT)

    def fail(self, c: Conn, why: str) -> None:
        self.failed += 1
        self.first_error = self.first_error or why
        if c.sock.fileno() in self.conns:
            self.ep.unregister(c.sock.fileno())
            del self.conns[c.sock.fileno()]
        c.state = "failed"
        c.sock.close()

    def handshake_step(self, fd: int, ev: int) -> None:
        c = self.conns[fd]
        try:
            if c.state == "connect":
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    return self.fail(c, "connect: " + os.strerror(err))
                c.sock.send(c.buf)  # a few hundred bytes into an empty buffer
                c.buf, c.state = b"", "upgrade"
                self.ep.modify(fd, select.EPOLLIN)
                return
            data = c.sock.recv(4096)
        except OSError as e:
            return self.fail(c, f"{c.state}: {e.strerror}")
        if not data:
            return self.fail(c, "closed during the handshake")
        c.buf += data
        head, sep, rest = c.buf.partition(b"\r\n\r\n")
        if not sep:
            return
        want = base64.b64encode(hashlib.sha1(c.key + GUID).digest())
        lines = head.split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1.1 101"):
            return self.fail(c, "answered " + lines[0].decode("latin-1")[:60])
        accept = [ln.split(b":", 1)[1].strip() for ln in lines[1:]
                  if ln.lower().startswith(b"sec-websocket-accept:")]
        if accept != [want]:
            return self.fail(c, "wrong Sec-WebSocket-Accept")
        c.buf, c.state = rest, "open"
        self.open += 1
        if rest:
            self.frames(c, None)

    def open_all(self) -> None:
        started, deadline = 0, time.monotonic() + OPEN_TIMEOUT_S
        while time.monotonic() < deadline:
            pending = started - self.open - self.failed
            while started < self.count and pending < IN_FLIGHT:
                self.start_one(self.path)
                started += 1
                pending += 1
            if started == self.count and pending == 0:
                break
            for fd, ev in self.ep.poll(0.05):
                if self.conns[fd].state == "open":
                    self.readable(fd)
                else:
                    self.handshake_step(fd, ev)
        for c in self.order:
            if c.state in ("connect", "upgrade"):
                self.fail(c, "handshake timed out")

    # -- open websockets ------------------------------------------------------
    def readable(self, fd: int) -> None:
        c = self.conns[fd]
        try:
            data, anc, _, _ = c.sock.recvmsg(65536, ANC)
        except BlockingIOError:
            return
        except OSError as e:
            data, anc = b"", []
            self.first_error = self.first_error or e.strerror
        if not data:
            self.gone(c)
            return
        kernel = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
                sec, nsec = struct.unpack("qq", payload[:16])
                kernel = sec + nsec * 1e-9
        c.buf += data
        self.frames(c, kernel)

    def gone(self, c: Conn) -> None:
        if c.state == "open":
            self.open -= 1
            self.closed += 1
        c.state = "closed"
        fd = c.sock.fileno()
        if fd in self.conns:
            self.ep.unregister(fd)
            del self.conns[fd]
        c.sock.close()

    def frames(self, c: Conn, kernel) -> None:
        """Takes whole server frames (unmasked) out of c.buf."""
        while len(c.buf) >= 2:
            b0, b1 = c.buf[0], c.buf[1]
            n, at = b1 & 0x7F, 2
            if n == 126:
                if len(c.buf) < 4:
                    return
                n, at = struct.unpack_from("!H", c.buf, 2)[0], 4
            elif n == 127:
                if len(c.buf) < 10:
                    return
                n, at = struct.unpack_from("!Q", c.buf, 2)[0], 10
            if len(c.buf) < at + n:
                return
            payload, c.buf = c.buf[at:at + n], c.buf[at + n:]
            op = b0 & 0x0F
            if op == 9:  # ping: pong with its payload
                try:
                    c.sock.send(frame(payload, 10))
                except OSError:
                    pass
            elif op == 8:
                self.gone(c)
                return
            elif op in (1, 2) and self.armed and c.got_app is None:
                c.got_app = time.time()
                c.got_kernel = kernel if kernel is not None else c.got_app
                self.got += 1

    def arm(self) -> None:
        for c in self.order:
            c.got_kernel = c.got_app = None
        self.got, self.armed = 0, True

    def result(self) -> dict:
        got = [c for c in self.order if c.got_app is not None]
        res = {"got": len(got), "open": self.open, "closed": self.closed}
        if got:
            res.update(first_kernel=min(c.got_kernel for c in got),
                       last_kernel=max(c.got_kernel for c in got),
                       last_app=max(c.got_app for c in got))
        return res


def say(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve(cl: Clients) -> None:
    """Commands on stdin; meanwhile every websocket stays read (pings answered)."""
    cl.ep.register(0, select.EPOLLIN)
    pending = b""
    waiting = None  # deadline of a "wait" not yet answered
    while True:
        timeout = 1.0 if waiting is None else max(0.0, waiting - time.monotonic())
        for fd, _ in cl.ep.poll(timeout):
            if fd != 0:
                if fd in cl.conns:
                    cl.readable(fd)
                continue
            chunk = os.read(0, 65536)
            if not chunk:
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                cmd = json.loads(line)
                if cmd["cmd"] == "arm":
                    cl.arm()
                    say({"armed": cl.open})
                elif cmd["cmd"] == "send":
                    t0 = time.time()
                    cl.order[0].sock.send(frame(cmd["text"].encode()))
                    say({"t0": t0})
                elif cmd["cmd"] == "wait":
                    waiting = time.monotonic() + float(cmd["timeout"])
                elif cmd["cmd"] == "quit":
                    return
        if waiting is not None and (cl.got >= cl.open or time.monotonic() >= waiting):
            waiting = None
            cl.armed = False
            say(cl.result())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--path", default="/")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cl = Clients(args.port, args.count, args.path)
    t0 = time.monotonic()
    cl.open_all()
    say({"open": cl.open, "failed": cl.failed, "error": cl.first_error,
         "open_s": time.monotonic() - t0})
    serve(cl)
    for c in cl.order:
        c.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
