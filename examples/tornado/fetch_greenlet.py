"""A WSGI app that parks on greenlets while Tornado does the I/O, in the
style of uWSGI's tornado plugin -- but the request code reads straight down,
no callbacks to write.

    spindle --http-socket 127.0.0.1:9090 --tornado 100 --greenlet \\
        --wsgi-file examples/tornado/fetch_greenlet.py
    curl '127.0.0.1:9090/fetch?tag=hi'

Each request runs in a greenlet whose parent is the worker's loop. To wait,
the request hands the IOLoop a callback that switches back to it, then
switches to its parent; the IOLoop runs the callback when the future (or the
timer) is done. No spindle API is used, so it needs `--greenlet`; on the
fiber engine every route answers 500 and says so.

/backend?tag=T&delay=S   the thing to fetch: "backend:T" after an IOLoop timer of S seconds
/fetch?tag=T&delay=S     fetches BACKEND_URL?tag=T&delay=S (BACKEND_URL from the
                         environment, default: /backend on this server,
                         assumed to listen on 127.0.0.1), answers
                         JSON with the fetched body and how long it took
/fetch?url=U             fetches U as given
/fetch_raise?url=U       fetches with raise_error=True and answers which exception
                         the wait raised: {"error": "HTTPClientError", "code": 404, ...}
/block?s=S               time.sleep(S): blocks the whole worker, for contrast
/fetch_timer?...&timer=S as /fetch, then parks S seconds more (default 0.1) on an
                         IOLoop.call_later whose callback is the greenlet's switch
"""

import json
import os
import time
from urllib.parse import parse_qs, urlencode

import greenlet
from tornado.httpclient import AsyncHTTPClient
from tornado.ioloop import IOLoop

AsyncHTTPClient.configure(None, max_clients=1000)


def query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def reply(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode() + b"\n"
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def target(environ, q):
    if "url" in q:
        return q["url"]
    base = (os.environ.get("BACKEND_URL")
            or "http://127.0.0.1:%s/backend" % environ["SERVER_PORT"])
    params = {k: q[k] for k in ("tag", "delay") if k in q}
    return base + ("?" + urlencode(params) if params else "")


def park_on(fut):
    """Parks this request until the future is done; returns its result."""
    me = greenlet.getcurrent()
    IOLoop.current().add_future(fut, lambda f: me.switch())
    me.parent.switch()
    return fut.result()


def park_for(seconds):
    me = greenlet.getcurrent()
    IOLoop.current().call_later(seconds, me.switch)
    me.parent.switch()


def backend(environ, start_response):
    q = query(environ)
    delay = float(q.get("delay", "0"))
    if delay > 0:
        park_for(delay)
    body = ("backend:%s" % q.get("tag", "")).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def fetch(environ, start_response, timer=None):
    q = query(environ)
    url = target(environ, q)
    t0 = time.monotonic()
    resp = park_on(AsyncHTTPClient().fetch(url, raise_error=False))
    fetched = time.monotonic() - t0
    if timer is not None:
        park_for(timer)
    return reply(start_response, {
        "url": url,
        "code": resp.code,
        "body": resp.body.decode("utf-8", "replace") if resp.body else "",
        "fetch_seconds": fetched,
        "total_seconds": time.monotonic() - t0,
        "pid": os.getpid(),
    })


def fetch_raise(environ, start_response):
    # A failed fetch raises where the request waits, like any exception.
    url = target(environ, query(environ))
    try:
        resp = park_on(AsyncHTTPClient().fetch(url))
    except Exception as e:
        return reply(start_response, {"error": type(e).__name__, "code": getattr(e, "code", None),
                                      "message": str(e)})
    return reply(start_response, {"error": None, "code": resp.code})


def block(environ, start_response):
    # What not to do: time.sleep holds the whole worker (--harakiri kills it).
    time.sleep(float(query(environ).get("s", "1")))
    return reply(start_response, {"blocked": True})


def fetch_timer(environ, start_response):
    return fetch(environ, start_response, timer=float(query(environ).get("timer", "0.1")))


ROUTES = {"/backend": backend, "/block": block, "/fetch": fetch,
          "/fetch_raise": fetch_raise, "/fetch_timer": fetch_timer}


def application(environ, start_response):
    if greenlet.getcurrent().parent is None:
        body = b"this app parks on greenlets: serve it with --greenlet\n"
        start_response("500 Internal Server Error", [("Content-Type", "text/plain"),
                                                     ("Content-Length", str(len(body)))])
        return [body]
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", "10")])
        return [b"not found\n"]
    return route(environ, start_response)
