"""An app that misbehaves on request, for t/live/test_hostile.py.

Each path is one way an app (or the client talking to it) can push the
server: deep recursion through C code, responses that lie about their
length, statuses the server must refuse, huge claimed bodies, partial
wsgi.errors lines from interleaved requests, uWSGI async state left behind.
"""

import ast
import json
import os
import urllib.parse

import spindle
import uwsgi


def _walk(o):
    # Recursion that passes through C (map, max) at every level: each level
    # costs C stack as well as a Python frame.
    return 1 + max(map(_walk, o), default=0) if isinstance(o, list) else 0


def _query(environ):
    return dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))


def _text(start_response, body, status="200 OK"):
    body = body.encode() if isinstance(body, str) else body
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def ok(environ, start_response):
    return _text(start_response, "ok %d" % os.getpid())


def walk(environ, start_response):
    return _text(start_response, str(_walk(json.loads(b"[" * 900 + b"]" * 900))))


def literal(environ, start_response):
    value = ast.literal_eval("[" * 150 + "]" * 150)
    return _text(start_response, "parsed %s" % type(value).__name__)


def short(environ, start_response):
    """Announces 5 bytes and sends none."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b""]


def inject(environ, start_response):
    """Announces 2 bytes and sends a whole second response after them."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"OK" + b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nINJECTED"]


def status(environ, start_response):
    """Answers with the status line given in ?s= (no reason phrase check)."""
    start_response(_query(environ).get("s", "200 OK"), [("Content-Type", "text/plain")])
    return [b"status body"]


def two_lengths(environ, start_response):
    start_response("200 OK", [("Content-Length", "2"), ("Content-Length", "3")])
    return [b"OK"]


def read(environ, start_response):
    """Reads ?n= bytes of the body (default: the whole Content-Length in one
    call); says what it got, or which OSError ended the read."""
    q = _query(environ)
    n = int(q.get("n") or environ.get("CONTENT_LENGTH") or 0)
    try:
        data = environ["wsgi.input"].read(n)
    except OSError as e:
        return _text(start_response, "OSError %s" % e)
    return _text(start_response, "read %d %r" % (len(data), data[:32]))


def upload(environ, start_response):
    """Reads the whole body without guarding against the client leaving
    (after a log line saying it is about to, for tests to wait on)."""
    spindle.log("upload %s reading" % _query(environ).get("tag", "-"))
    data = environ["wsgi.input"].read()
    return _text(start_response, "got %d" % len(data))


_partial = set()


def errors(environ, start_response):
    """Writes half a line to wsgi.errors, waits until the other request with
    the same ?group= has done the same, then ends the line."""
    q = _query(environ)
    tag, group = q["tag"], q.get("group", "g")
    err = environ["wsgi.errors"]
    err.write("errors-line %s-begin " % tag)
    _partial.add((group, tag))
    for _ in range(500):  # at most 5 s
        if len([1 for g, _ in _partial if g == group]) >= 2:
            break
        spindle.sleep(0.01)
    err.write("%s-end\n" % tag)
    return _text(start_response, "ok")


def uwsgi_wait(environ, start_response):
    """A uWSGI async wait whose suspend() never comes: a readable pipe, so
    ready_fd() is its fd."""
    r, w = os.pipe()
    try:
        os.write(w, b"x")
        uwsgi.wait_fd_read(r, 1)
        ready = uwsgi.ready_fd()
    finally:
        os.close(r)
        os.close(w)
    return _text(start_response, "ready %d" % ready)


def uwsgi_fresh(environ, start_response):
    """What a new request sees of the uWSGI async state: ready_fd() and
    whether suspend() really gave the loop a turn (a callback queued before
    it has run by the time it returns)."""
    ready = uwsgi.ready_fd()
    ran = []
    spindle.add_callback(ran.append, 1)
    uwsgi.suspend()
    ran_before_return = bool(ran)
    # Leave no callback behind for the next request.
    for _ in range(100):
        if ran:
            break
        spindle.yield_now()
    return _text(start_response, "ready %d yielded %s" % (ready, ran_before_return))


class _CloseRaises:
    """A body produced whole, then a close() that raises."""

    def __init__(self, parts):
        self.parts = parts

    def __iter__(self):
        return iter(self.parts)

    def close(self):
        raise RuntimeError("close-boom")


def close_raises(environ, start_response):
    """?length=1: with a Content-Length; otherwise chunked (HTTP/1.1)."""
    parts = [b"part1-", b"part2"]
    headers = [("Content-Type", "text/plain")]
    if _query(environ).get("length"):
        headers.append(("Content-Length", str(sum(map(len, parts)))))
    start_response("200 OK", headers)
    return _CloseRaises(parts)


def raise_midway(environ, start_response):
    """Yields part of a body, then raises (?whole=1: the rest instead).
    ?length=N announces N bytes."""
    q = _query(environ)
    headers = [("Content-Type", "text/plain")]
    if q.get("length"):
        headers.append(("Content-Length", q["length"]))
    start_response("200 OK", headers)
    yield b"first half;"
    spindle.yield_now()  # the first half leaves before the failure
    if not q.get("whole"):
        raise RuntimeError("midway-boom")
    yield b"second half"


def big_unread(environ, start_response):
    """?n= bytes with a Content-Length, never reading the request body."""
    n = int(_query(environ).get("n", "1000000"))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(n))])
    return (b"x" * min(65536, n - i) for i in range(0, n, 65536))


ROUTES = {
    "/": ok,
    "/ok": ok,
    "/walk": walk,
    "/literal": literal,
    "/short": short,
    "/inject": inject,
    "/status": status,
    "/two_lengths": two_lengths,
    "/read": read,
    "/upload": upload,
    "/errors": errors,
    "/uwsgi_wait": uwsgi_wait,
    "/uwsgi_fresh": uwsgi_fresh,
    "/close_raises": close_raises,
    "/raise_midway": raise_midway,
    "/big_unread": big_unread,
}


def application(environ, start_response):
    route = ROUTES.get(environ.get("PATH_INFO", "/"))
    if route is None:
        return _text(start_response, "no such path", "404 Not Found")
    return route(environ, start_response)
