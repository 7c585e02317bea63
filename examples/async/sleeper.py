"""Requests that sleep without blocking the worker.

    spindle --http-socket 127.0.0.1:9090 --async 100 --wsgi-file examples/async/sleeper.py

/sleep?s=0.5&tag=T   parks for s seconds with spindle.sleep, answers JSON with
                     the tag, the core and worker that served it, when it
                     started (a per-worker sequence number) and how many
                     requests were running at once at the peak so far;
                     busy=B first keeps the CPU busy for B seconds (no park)
/nap?s=0.5           the lightest park: spindle.sleep and a count of naps
                     running, answers "slept"
/stats               the running and napping counts, the peak and the number of requests started
/reset               forgets the peak and the start sequence
/ids                 worker_id(), core_id(), os.getpid() and what @postfork saw
/hello               a plain hello world

POSTFORK_DIR (environment) names a directory in which the postfork hook
creates a file named after the worker's pid, containing its worker_id.
"""

import json
import os
import time
from urllib.parse import parse_qs

import spindle

STATE = {"running": 0, "peak": 0, "started": 0, "napping": 0}
POSTFORK = []


@spindle.postfork
def after_fork():
    POSTFORK.append({"pid": os.getpid(), "worker_id": spindle.worker_id()})
    where = os.environ.get("POSTFORK_DIR")
    if where:
        with open(os.path.join(where, "%d" % os.getpid()), "w") as f:
            f.write("%d\n" % spindle.worker_id())


def query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def reply(start_response, obj):
    body = json.dumps(obj, sort_keys=True).encode() + b"\n"
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def sleep(environ, start_response):
    q = query(environ)
    seconds = float(q.get("s", "0.5"))
    busy_until = time.monotonic() + float(q.get("busy", "0"))
    while time.monotonic() < busy_until:
        pass
    STATE["started"] += 1
    seq = STATE["started"]
    STATE["running"] += 1
    STATE["peak"] = max(STATE["peak"], STATE["running"])
    t0 = time.monotonic()
    try:
        spindle.sleep(seconds)
    finally:
        STATE["running"] -= 1
    return reply(start_response, {
        "tag": q.get("tag", ""),
        "seq": seq,
        "slept": time.monotonic() - t0,
        "core_id": spindle.core_id(),
        "worker_id": spindle.worker_id(),
        "pid": os.getpid(),
        "peak": STATE["peak"],
    })


def nap(environ, start_response):
    STATE["napping"] += 1
    try:
        spindle.sleep(float(environ["QUERY_STRING"][2:] or 0.5))
    finally:
        STATE["napping"] -= 1
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
    return [b"slept\n"]


def stats(environ, start_response):
    return reply(start_response, dict(STATE))


def reset(environ, start_response):
    STATE["peak"] = STATE["running"]
    STATE["started"] = 0
    return reply(start_response, dict(STATE))


def ids(environ, start_response):
    return reply(start_response, {
        "worker_id": spindle.worker_id(),
        "core_id": spindle.core_id(),
        "pid": os.getpid(),
        "postfork": POSTFORK,
    })


def hello(environ, start_response):
    body = b"Hello, World!\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


ROUTES = {"/sleep": sleep, "/nap": nap, "/stats": stats, "/reset": reset, "/ids": ids, "/hello": hello}


def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", "10")])
        return [b"not found\n"]
    return route(environ, start_response)
