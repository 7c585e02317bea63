"""A uWSGI async app, unmodified: wait for a socket with uwsgi.wait_fd_read
and find out with uwsgi.ready_fd() whether it became readable or timed out.

    spindle --http-socket :9090 --async 8 --wsgi-file examples/async/uwsgi_fd.py

/wait?key=K&timeout=5   makes a socketpair and waits on one end (uwsgi.wait_fd_read,
                        then `yield b""`); answers `ready DATA` or `timeout`
/wait_suspend?key=K...  the same, with uwsgi.suspend() in place of the empty yield
/wait_returned?key=K... the same as `yield uwsgi.wait_fd_read(fd, timeout)` (it returns b"")
/send?key=K&data=D      writes D to the other end of K's socketpair (409 if none)
(module globals: serve with one worker)
"""

import socket
from urllib.parse import parse_qs

import uwsgi

PEERS = {}


def application(env, start_response):
    qs = {k: v[-1] for k, v in parse_qs(env.get("QUERY_STRING", "")).items()}
    path = env["PATH_INFO"]
    if path == "/send":
        peer = PEERS.pop(qs["key"], None)
        if peer is None:
            start_response("409 Conflict", [("Content-Type", "text/plain")])
            yield b"nobody waits\n"
            return
        peer.send(qs.get("data", "x").encode())
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"sent\n"
        return

    mine, peer = socket.socketpair()
    PEERS[qs["key"]] = peer
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        timeout = int(qs.get("timeout", "5"))
        if path == "/wait_returned":
            yield uwsgi.wait_fd_read(mine.fileno(), timeout)
        else:
            uwsgi.wait_fd_read(mine.fileno(), timeout)
            if path == "/wait_suspend":
                uwsgi.suspend()
            else:
                yield b""
        fd = uwsgi.ready_fd()
        if fd == -1:
            yield b"timeout\n"
        elif fd == mine.fileno():
            yield b"ready " + mine.recv(4096) + b"\n"
        else:
            yield b"unexpected fd %d\n" % fd
    finally:
        PEERS.pop(qs["key"], None)
        mine.close()
        peer.close()
