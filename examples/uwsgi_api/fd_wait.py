"""Waiting on file descriptors the uWSGI way: wait_fd_read/wait_fd_write,
then suspend(), then ready_fd() says whether the fd or the timeout won.

    /read?timeout=S   waits for the worker's pipe; answers what it read
    /write?data=D     writes D into that pipe (wakes a waiting /read)
    /waiting          how many /read requests are parked on the pipe
    /connect?addr=A   async_connect to A, wait_fd_write, is_connected; then
                      sends "ping\\n" and reads the peer's answer

Run with one worker: the pipe is per worker.
"""

import json
import os
import time
from urllib.parse import parse_qs

import uwsgi

PIPE = os.pipe()
os.set_blocking(PIPE[0], False)
READERS = {"parked": 0}


def _q(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _json(start_response, obj):
    body = json.dumps(obj).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def read(environ, start_response):
    timeout = float(_q(environ).get("timeout", "5"))
    t0 = time.monotonic()
    READERS["parked"] += 1
    try:
        uwsgi.wait_fd_read(PIPE[0], timeout)
        uwsgi.suspend()
    finally:
        READERS["parked"] -= 1
    fd = uwsgi.ready_fd()
    data = os.read(PIPE[0], 100).decode() if fd == PIPE[0] else None
    return _json(start_response, {"ready_fd": fd, "pipe_fd": PIPE[0], "data": data,
                                  "elapsed": time.monotonic() - t0})


def write(environ, start_response):
    os.write(PIPE[1], _q(environ).get("data", "x").encode())
    return _json(start_response, {"written": True})


def waiting(environ, start_response):
    return _json(start_response, {"readers": READERS["parked"]})


def connect(environ, start_response):
    addr = _q(environ)["addr"]
    fd = uwsgi.async_connect(addr)
    if fd < 0:
        return _json(start_response, {"fd": fd})
    try:
        uwsgi.wait_fd_write(fd, 5)
        uwsgi.suspend()
        result = {"fd": fd, "ready_fd": uwsgi.ready_fd(), "connected": uwsgi.is_connected(fd)}
        if result["connected"]:
            os.write(fd, b"ping\n")
            uwsgi.wait_fd_read(fd, 5)
            uwsgi.suspend()
            reply = uwsgi.recv(fd)
            result["reply"] = reply.decode() if reply else None
        return _json(start_response, result)
    finally:
        uwsgi.close(fd)


ROUTES = {"/read": read, "/write": write, "/waiting": waiting, "/connect": connect}


def application(environ, start_response):
    return ROUTES[environ["PATH_INFO"]](environ, start_response)
