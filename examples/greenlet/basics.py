"""Plain WSGI served on greenlet cores: streaming, request bodies, parking.

    spindle --http-socket 127.0.0.1:9090 --greenlet --async 8 \\
            --wsgi-file examples/greenlet/basics.py

/hello            hello world
/stream?n=5&s=0   a generator: n chunks, parking s seconds before each; every
                  chunk names the greenlet that produced it
/echo             reads the request body in 64 KiB pieces; answers its length
                  and sha256 (JSON)
/sleep?s=0.3      spindle.sleep(s); answers the greenlet, the core and the
                  peak number of requests sleeping at once
/stats            {"running", "peak"}; /reset sets the peak to the running count
"""

import hashlib
import json
from urllib.parse import parse_qs

import greenlet
import spindle

STATE = {"running": 0, "peak": 0}


def query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def reply(start_response, obj):
    body = json.dumps(obj, sort_keys=True).encode() + b"\n"
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def me():
    """The running greenlet, and whether its parent is the worker's main one."""
    g = greenlet.getcurrent()
    return {"greenlet": id(g), "parent_is_main": g.parent is not None and g.parent.parent is None}


def hello(environ, start_response):
    body = b"Hello, World!\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def stream(environ, start_response):
    q = query(environ)
    n = int(q.get("n", "5"))
    pause = float(q.get("s", "0"))
    start_response("200 OK", [("Content-Type", "text/plain")])

    def chunks():
        for i in range(n):
            if pause:
                spindle.sleep(pause)
            yield ("%d %d\n" % (i, id(greenlet.getcurrent()))).encode()

    return chunks()


def echo(environ, start_response):
    h = hashlib.sha256()
    size = 0
    stream = environ["wsgi.input"]
    while True:
        piece = stream.read(65536)
        if not piece:
            break
        size += len(piece)
        h.update(piece)
    return reply(start_response, {"length": size, "sha256": h.hexdigest()})


def sleep(environ, start_response):
    seconds = float(query(environ).get("s", "0.3"))
    before = me()
    STATE["running"] += 1
    STATE["peak"] = max(STATE["peak"], STATE["running"])
    try:
        spindle.sleep(seconds)
    finally:
        STATE["running"] -= 1
    after = me()
    return reply(start_response, {"same_greenlet": before == after, "core_id": spindle.core_id(),
                                  "peak": STATE["peak"], **after})


def stats(environ, start_response):
    return reply(start_response, dict(STATE))


def reset(environ, start_response):
    STATE["peak"] = STATE["running"]
    return reply(start_response, dict(STATE))


ROUTES = {"/hello": hello, "/stream": stream, "/echo": echo, "/sleep": sleep, "/stats": stats,
          "/reset": reset}


def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", "10")])
        return [b"not found\n"]
    return route(environ, start_response)
