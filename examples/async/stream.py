"""Long responses beside short ones.

    spindle --http-socket 127.0.0.1:9090 --async 4 --wsgi-file examples/async/stream.py

/chunks?n=100000&work=0   a generator of n small chunks ("%07d\\n" % i), sent
                          chunked; `work` is a busy loop run before each
                          chunk, so the stream is limited by the CPU and not
                          by the client
/large?mb=32              mb MiB of b"x" in 64 KiB blocks, with Content-Length
/held                     yields "first\n", then waits (parked) until a
                          /release request comes, then yields "second\n":
                          the first chunk must reach the client meanwhile
/release                  lets the /held responses finish
/hello                    a short JSON answer that also tells how far the
                          current /chunks and /large responses have got
                          (module globals: serve with one worker)
"""

import json
from urllib.parse import parse_qs

import spindle

PROGRESS = {"chunks_sent": 0, "chunks_active": 0, "large_sent": 0, "large_active": 0,
            "released": 0}
BLOCK = b"x" * 65536


def query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def chunks(environ, start_response):
    q = query(environ)
    n = int(q.get("n", "100000"))
    work = int(q.get("work", "0"))
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        PROGRESS["chunks_active"] += 1
        try:
            for i in range(n):
                for _ in range(work):
                    pass
                PROGRESS["chunks_sent"] = i
                yield b"%07d\n" % i
            PROGRESS["chunks_sent"] = n
        finally:
            PROGRESS["chunks_active"] -= 1
    return body()


def large(environ, start_response):
    size = int(float(query(environ).get("mb", "32")) * (1 << 20))
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(size))])

    def body():
        PROGRESS["large_active"] += 1
        PROGRESS["large_sent"] = 0
        try:
            left = size
            while left > 0:
                block = BLOCK if left >= len(BLOCK) else BLOCK[:left]
                left -= len(block)
                PROGRESS["large_sent"] += len(block)
                yield block
        finally:
            PROGRESS["large_active"] -= 1
    return body()


def held(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    released = PROGRESS["released"]

    def body():
        yield b"first\n"
        while PROGRESS["released"] == released:
            spindle.sleep(0.01)
        yield b"second\n"
    return body()


def release(environ, start_response):
    PROGRESS["released"] += 1
    return hello(environ, start_response)


def hello(environ, start_response):
    body = json.dumps(dict(PROGRESS, hello="world"), sort_keys=True).encode() + b"\n"
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


ROUTES = {"/chunks": chunks, "/large": large, "/hello": hello, "/held": held,
          "/release": release}


def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", "10")])
        return [b"not found\n"]
    return route(environ, start_response)
