"""A WSGI app whose endpoints probe the server: process identity, blocking,
errors, streaming, close(), file_wrapper and the `spindle` module.

    spindle --http-socket 127.0.0.1:9090 --wsgi-file examples/probe.py
    curl 127.0.0.1:9090/pid

CLOSE_LOG (environment, e.g. --env CLOSE_LOG=/tmp/close.log) is the file
that /track appends to when its iterable starts and when close() runs.
"""

import json
import os
import sys
import time
from urllib.parse import parse_qs

try:
    import spindle
except ImportError:  # served by something else
    spindle = None

POSTFORK = []

if spindle is not None and hasattr(spindle, "postfork"):
    @spindle.postfork
    def _after_fork():
        POSTFORK.append(os.getpid())

TEXT = [("Content-Type", "text/plain")]
REQUESTS = {"count": 0}


def _q(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _text(start_response, text, status="200 OK"):
    body = text.encode() if isinstance(text, str) else text
    start_response(status, TEXT + [("Content-Length", str(len(body)))])
    return [body]


def _log_close(line):
    path = os.environ.get("CLOSE_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


class Tracked:
    """A long streaming body that records start and close()."""

    def __init__(self, tag, chunks, size, delay):
        self.tag = tag
        self.chunks = chunks
        self.size = size
        self.delay = delay
        _log_close("start %s" % tag)

    def __iter__(self):
        block = b"x" * (self.size - 1) + b"\n"
        for i in range(self.chunks):
            if self.delay:
                time.sleep(self.delay)
            yield block

    def close(self):
        _log_close("closed %s" % self.tag)


def pid(environ, start_response):
    REQUESTS["count"] += 1
    return _text(start_response, "%d\n" % os.getpid())


def whoami(environ, start_response):
    REQUESTS["count"] += 1
    return _json(start_response, {"pid": os.getpid(), "count": REQUESTS["count"]})


def sleep(environ, start_response):
    """time.sleep: blocks the whole worker (what a naive app does)."""
    q = _q(environ)
    s = float(q.get("s", "1"))
    # tests wait for this line to know the request is inside the app
    environ["wsgi.errors"].write("sleep start %s\n" % q.get("token", "-"))
    environ["wsgi.errors"].flush()
    time.sleep(s)
    return _text(start_response, "slept %s in %d\n" % (s, os.getpid()))


def grow(environ, start_response):
    """Holds mb MiB (touched) for s seconds: a worker over --reload-on-rss."""
    q = _q(environ)
    held = bytearray(int(q.get("mb", "100")) << 20)
    for i in range(0, len(held), 4096):
        held[i] = 1
    environ["wsgi.errors"].write("grow start\n")
    environ["wsgi.errors"].flush()
    time.sleep(float(q.get("s", "30")))
    return _text(start_response, "held %d bytes\n" % len(held))


def stuck(environ, start_response):
    time.sleep(30)
    return _text(start_response, "woke up\n")


def error(environ, start_response):
    token = _q(environ).get("token", "boom")
    raise RuntimeError("secret-failure-%s" % token)


def error_in_iter(environ, start_response):
    start_response("200 OK", TEXT)

    def body():
        yield b"partial\n"
        raise RuntimeError("failure-in-iteration")
    return body()


def readall(environ, start_response):
    data = environ["wsgi.input"].read()
    more = environ["wsgi.input"].read()
    return _json(start_response, {"len": len(data), "more": len(more),
                                  "head": data[:32].decode("latin-1"),
                                  "tail": data[-32:].decode("latin-1")})


def echo(environ, start_response):
    """The body back, read with read() (no size), with what the app saw."""
    data = environ["wsgi.input"].read()
    start_response("200 OK", TEXT + [("Content-Length", str(len(data))),
                                     ("X-Content-Length", environ.get("CONTENT_LENGTH", "-")),
                                     ("X-Content-Type", environ.get("CONTENT_TYPE", "-"))])
    return [data]


def gen(environ, start_response):
    """n lines from a generator, no Content-Length."""
    n = int(_q(environ).get("n", "5"))
    start_response("200 OK", TEXT)
    return (b"line %d\n" % i for i in range(n))


def big(environ, start_response):
    """n bytes in 64 KiB chunks, no Content-Length."""
    n = int(_q(environ).get("n", str(1 << 20)))
    start_response("200 OK", TEXT)

    def body():
        sent = 0
        for _ in range(1 << 20):
            if sent >= n:
                break
            k = min(65536, n - sent)
            yield bytes([65 + (sent // 65536) % 26]) * k
            sent += k
    return body()


def track(environ, start_response):
    q = _q(environ)
    start_response("200 OK", TEXT)
    return Tracked(q.get("tag", "t"), int(q.get("chunks", "100000")), int(q.get("size", "65536")),
                   float(q.get("delay", "0")))


def file(environ, start_response):
    q = _q(environ)
    f = open(q["path"], "rb")
    headers = list(TEXT)
    if q.get("cl"):
        headers.append(("Content-Length", str(os.path.getsize(q["path"]))))
    start_response("200 OK", headers)
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is None:
        return iter(lambda: f.read(8192), b"")
    return wrapper(f, int(q.get("blksize", "8192")))


def plain_list(environ, start_response):
    """A bare list without Content-Length (the server computes one)."""
    start_response("200 OK", TEXT)
    return [b"one ", b"two ", b"", b"three\n"]


def plain_tuple(environ, start_response):
    start_response("200 OK", TEXT)
    return (b"tu", b"ple\n")


def plain_empty(environ, start_response):
    start_response("200 OK", TEXT)
    return []


def twice(environ, start_response):
    """start_response twice without exc_info must raise (PEP 3333)."""
    start_response("200 OK", TEXT)
    try:
        start_response("201 Created", TEXT)
    except Exception as e:  # noqa: BLE001 - any exception is what we want
        return [("raised %s\n" % type(e).__name__).encode()]
    return [b"did not raise\n"]


def exc_after_headers(environ, start_response):
    """Headers are out; start_response(exc_info) must re-raise, and the server
    must not pretend the response completed."""
    start_response("200 OK", TEXT)

    def body():
        yield b"first part\n"
        try:
            raise KeyError("late failure")
        except KeyError:
            start_response("500 Internal Server Error", TEXT, sys.exc_info())
        yield b"must not be sent\n"
    return body()


def spindle_info(environ, start_response):
    if spindle is None:
        return _json(start_response, {"error": "no spindle module"}, "500 Internal Server Error")
    return _json(start_response, {
        "worker_id": spindle.worker_id(), "core_id": spindle.core_id(),
        "pid": os.getpid(), "postfork": POSTFORK,
    })


def spindle_sleep(environ, start_response):
    s = float(_q(environ).get("s", "0.3"))
    t0 = time.monotonic()
    spindle.sleep(s)
    return _json(start_response, {"slept": time.monotonic() - t0, "core_id": spindle.core_id()})


def wait_fd(environ, start_response):
    r, w = os.pipe()
    try:
        t0 = time.monotonic()
        empty = spindle.wait_fd_read(r, 0.3)
        t_empty = time.monotonic() - t0
        os.write(w, b"x")
        t0 = time.monotonic()
        ready = spindle.wait_fd_read(r, 5)
        t_ready = time.monotonic() - t0
        writable = spindle.wait_fd_write(w, 5)
        data = os.read(r, 1)
    finally:
        os.close(r)
        os.close(w)
    return _json(start_response, {"empty": repr(empty), "t_empty": t_empty, "ready": repr(ready),
                                  "t_ready": t_ready, "writable": repr(writable),
                                  "data": data.decode()})


def getenv(environ, start_response):
    name = _q(environ).get("name", "")
    return _json(start_response, {"value": os.environ.get(name)})


def cwd(environ, start_response):
    return _json(start_response, {"cwd": os.getcwd()})


def headers(environ, start_response):
    return _json(start_response, {k: v for k, v in environ.items()
                                  if isinstance(v, str) and k.upper() == k})


ROUTES = {
    "/pid": pid, "/whoami": whoami, "/sleep": sleep, "/stuck": stuck, "/grow": grow, "/error": error,
    "/error_in_iter": error_in_iter, "/readall": readall, "/big": big, "/track": track,
    "/file": file, "/twice": twice, "/exc_after_headers": exc_after_headers,
    "/spindle": spindle_info, "/spindle_sleep": spindle_sleep, "/wait_fd": wait_fd,
    "/echo": echo, "/gen": gen, "/list": plain_list, "/tuple": plain_tuple, "/empty": plain_empty, "/getenv": getenv, "/cwd": cwd, "/headers": headers,
}


def application(environ, start_response):
    route = ROUTES.get(environ.get("PATH_INFO", "/"))
    if route is None:
        return _text(start_response, "not found\n", "404 Not Found")
    return route(environ, start_response)
