"""A WSGI app that waits on Tornado futures with spindle.wait.

    spindle --http-socket 127.0.0.1:9090 --tornado 100 --wsgi-file examples/tornado/fetch_wait.py
    spindle --http-socket 127.0.0.1:9090 --tornado 100 --greenlet \\
        --wsgi-file examples/tornado/fetch_wait.py
    curl '127.0.0.1:9090/fetch?tag=hi'

The request parks on the future until Tornado's AsyncHTTPClient has the
response; the worker's IOLoop serves other requests meanwhile. It runs under
either suspend engine (fibers or greenlet) unchanged.

/backend?tag=T&delay=S   the thing to fetch: "backend:T" after spindle.sleep(S)
/fetch?tag=T&delay=S     fetches BACKEND_URL?tag=T&delay=S (BACKEND_URL from the
                         environment, default: /backend on this server,
                         assumed to listen on 127.0.0.1), answers
                         JSON with the fetched body and how long it took
/fetch?url=U             fetches U as given
/fetch_raise?url=U       fetches with raise_error=True and answers which exception
                         the wait raised: {"error": "HTTPClientError", "code": 404, ...};
                         &timeout=S gives the wait a timeout (then "TimeoutError")
/fetch_coroutine?...     spindle.wait on an `async def` that fetches, then
                         `await asyncio.sleep(timer)` (default 0.1)
/block?s=S               time.sleep(S): blocks the whole worker, for contrast
/fetch_timer?...&timer=S as /fetch, then waits S seconds (default 0.1) on a
                         future that an IOLoop.call_later callback resolves
/ids                     worker_id(), core_id(), os.getpid()
"""

import asyncio
import json
import os
import time
from urllib.parse import parse_qs, urlencode

import spindle
from tornado.concurrent import Future
from tornado.httpclient import AsyncHTTPClient
from tornado.ioloop import IOLoop

# The default of 10 connections at a time would queue the rest.
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


def backend(environ, start_response):
    q = query(environ)
    delay = float(q.get("delay", "0"))
    if delay > 0:
        spindle.sleep(delay)
    body = ("backend:%s" % q.get("tag", "")).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def fetch(environ, start_response, timer=None):
    q = query(environ)
    url = target(environ, q)
    t0 = time.monotonic()
    resp = spindle.wait(AsyncHTTPClient().fetch(url, raise_error=False))
    fetched = time.monotonic() - t0
    if timer is not None:
        # A second, chained wait: a plain IOLoop timer resolves the future.
        done = Future()
        IOLoop.current().call_later(timer, lambda: done.set_result(IOLoop.current().time()))
        spindle.wait(done)
    return reply(start_response, {
        "url": url,
        "code": resp.code,
        "body": resp.body.decode("utf-8", "replace") if resp.body else "",
        "fetch_seconds": fetched,
        "total_seconds": time.monotonic() - t0,
        "pid": os.getpid(),
        "core_id": spindle.core_id(),
    })


def fetch_raise(environ, start_response):
    # A failed fetch raises where the request waits, like any exception.
    q = query(environ)
    url = target(environ, q)
    timeout = float(q["timeout"]) if "timeout" in q else None
    try:
        resp = spindle.wait(AsyncHTTPClient().fetch(url), timeout=timeout)
    except Exception as e:
        return reply(start_response, {"error": type(e).__name__, "code": getattr(e, "code", None),
                                      "message": str(e)})
    return reply(start_response, {"error": None, "code": resp.code})


async def fetch_then_sleep(url, seconds):
    resp = await AsyncHTTPClient().fetch(url)
    await asyncio.sleep(seconds)
    return resp.body.decode()


def fetch_coroutine(environ, start_response):
    # Native Tornado/asyncio code, awaited from the WSGI request.
    q = query(environ)
    t0 = time.monotonic()
    body = spindle.wait(fetch_then_sleep(target(environ, q), float(q.get("timer", "0.1"))))
    return reply(start_response, {"body": body, "total_seconds": time.monotonic() - t0})


def block(environ, start_response):
    # What not to do: time.sleep holds the whole worker (--harakiri kills it).
    time.sleep(float(query(environ).get("s", "1")))
    return reply(start_response, {"blocked": True})


def fetch_timer(environ, start_response):
    return fetch(environ, start_response, timer=float(query(environ).get("timer", "0.1")))


def ids(environ, start_response):
    return reply(start_response, {"worker_id": spindle.worker_id(), "core_id": spindle.core_id(),
                                  "pid": os.getpid()})


ROUTES = {"/backend": backend, "/block": block, "/fetch": fetch,
          "/fetch_coroutine": fetch_coroutine, "/fetch_raise": fetch_raise,
          "/fetch_timer": fetch_timer, "/ids": ids}


def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", "10")])
        return [b"not found\n"]
    return route(environ, start_response)
