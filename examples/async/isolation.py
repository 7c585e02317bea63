"""Interpreter state that must stay with its own request while requests
interleave on one worker: exception state, contextvars, threading.local and
recursion depth.

    spindle --http-socket 127.0.0.1:9090 --async 8 --wsgi-file examples/async/isolation.py

Every endpoint takes tag=T (a name for the request) and parks in the middle,
either for s=SECONDS or, with until=OTHER, until the request tagged OTHER has
finished (at most 20 s). /parked?tag=T tells whether T is parked right now,
so a client can start the other request at the right moment.

/exc?kind=value|key|runtime   raises and catches, parks inside the except
                              block, then reports sys.exc_info() and the
                              implicit exception chaining it sees
/ctx                          a contextvars.ContextVar before and after the park
/tlocal                       a threading.local attribute before and after the park
/recurse?depth=N              recurses N deep in Python (RecursionError -> 500)
/maxdepth                     how deep Python recursion gets here before RecursionError
/deep?depth=D                 recurses D deep, parks at the bottom, and measures
                              the recursion headroom left there before and after
/pid                          the worker's pid
(module globals: serve with one worker)
"""

import contextvars
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs

import spindle

PARKED = set()
FINISHED = set()
REQUEST_TAG = contextvars.ContextVar("request_tag", default=None)
LOCAL = threading.local()
EXCEPTIONS = {"value": ValueError, "key": KeyError, "runtime": RuntimeError}


def query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def reply(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode() + b"\n"
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def park(q):
    """Park this request as the query asks; True unless `until` never finished."""
    tag = q.get("tag", "")
    until = q.get("until")
    PARKED.add(tag)
    try:
        if until:
            deadline = time.monotonic() + 20
            while until not in FINISHED and time.monotonic() < deadline:
                spindle.sleep(0.01)
            return until in FINISHED
        spindle.sleep(float(q.get("s", "0.2")))
        return True
    finally:
        PARKED.discard(tag)


def describe(exc):
    if exc is None:
        return None
    return [type(exc).__name__, exc.args[0] if exc.args else None]


def exc(q):
    tag = q["tag"]
    kind = EXCEPTIONS[q.get("kind", "value")]
    out = {"tag": tag}
    try:
        raise kind(tag)
    except Exception:
        out["before"] = describe(sys.exc_info()[1])
        out["waited"] = park(q)
        out["after"] = describe(sys.exc_info()[1])
        try:
            raise TypeError("inner " + tag)
        except TypeError as inner:
            out["inner_context"] = describe(inner.__context__)
        out["after_inner"] = describe(sys.exc_info()[1])
    out["outside"] = describe(sys.exc_info()[1])
    return out


def ctx(q):
    tag = q["tag"]
    out = {"tag": tag, "before": REQUEST_TAG.get()}
    token = REQUEST_TAG.set(tag)
    out["waited"] = park(q)
    out["after"] = REQUEST_TAG.get()
    out["in_copy"] = contextvars.copy_context().run(REQUEST_TAG.get)
    REQUEST_TAG.reset(token)
    return out


def tlocal(q):
    tag = q["tag"]
    out = {"tag": tag, "before": getattr(LOCAL, "tag", None)}
    LOCAL.tag = tag
    out["waited"] = park(q)
    out["after"] = getattr(LOCAL, "tag", None)
    return out


def down(n):
    return 0 if n == 0 else 1 + down(n - 1)


def headroom(n=0):
    try:
        return headroom(n + 1)
    except RecursionError:
        return n


def recurse(q):
    depth = int(q.get("depth", "10000"))
    return {"reached": down(depth)}


def maxdepth(q):
    return {"depth": headroom(), "limit": sys.getrecursionlimit()}


def deep(q):
    depth = int(q.get("depth", "500"))
    out = {"tag": q.get("tag", "")}

    def at(n):
        if n:
            return at(n - 1)
        out["headroom_before"] = headroom()
        out["waited"] = park(q)
        out["headroom_after"] = headroom()
        return depth
    out["reached"] = at(depth)
    return out


def pid(q):
    return {"pid": os.getpid()}


def parked(q):
    return {"parked": q.get("tag") in PARKED}


ROUTES = {"/exc": exc, "/ctx": ctx, "/tlocal": tlocal, "/recurse": recurse,
          "/maxdepth": maxdepth, "/deep": deep, "/pid": pid, "/parked": parked}


def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        return reply(start_response, {"error": "not found"}, "404 Not Found")
    q = query(environ)
    try:
        result = route(q)
    finally:
        if "tag" in q and route is not parked:
            FINISHED.add(q["tag"])
    return reply(start_response, result)
