"""A uWSGI async app, unmodified: a non-blocking connect to a backend with
uwsgi.async_connect, then a request and its answer over that socket.

    spindle --http-socket :9090 --async 8 --wsgi-file examples/async/uwsgi_connect.py

/?addr=127.0.0.1:PORT   connects, sends "ping\\n", answers `connected: REPLY`,
                        `not connected` or `timeout`
"""

import os
from urllib.parse import parse_qs

import uwsgi


def application(env, start_response):
    addr = parse_qs(env.get("QUERY_STRING", ""))["addr"][0]
    start_response("200 OK", [("Content-Type", "text/plain")])
    fd = uwsgi.async_connect(addr)
    if fd < 0:
        yield b"not connected\n"
        return
    try:
        uwsgi.wait_fd_write(fd, 5)
        yield b""
        if not uwsgi.is_connected(fd):
            yield b"not connected\n"
            return
        os.write(fd, b"ping\n")
        uwsgi.wait_fd_read(fd, 5)
        yield b""
        if uwsgi.ready_fd() != fd:
            yield b"timeout\n"
            return
        yield b"connected: " + os.read(fd, 4096)
    finally:
        os.close(fd)
