"""The spindle side of the same ideas, next to uWSGI-style code.

    /connect?addr=A[&timeout=T]  spindle.connect(A): send "ping\\n", read the answer
    /wait                        spindle.wait() on a coroutine
    /spin                        loops on uwsgi.suspend() until /flag is requested
    /flag                        sets the flag a running /spin waits for
    /str?s=S                     yields the str S as a body chunk (only "" is allowed)

Run with one worker: /spin and /flag share a module global.
"""

import json
import time
from urllib.parse import parse_qs

import spindle
import uwsgi

FLAG = {"set": False, "spinning": False}


def _q(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _json(start_response, obj):
    body = json.dumps(obj).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def connect(environ, start_response):
    q = _q(environ)
    timeout = float(q["timeout"]) if "timeout" in q else None
    try:
        s = spindle.connect(q["addr"], timeout=timeout)
    except OSError as e:
        return _json(start_response, {"error": type(e).__name__, "message": str(e)})
    with s:
        result = {"blocking": s.getblocking(), "peer": str(s.getpeername())}
        s.sendall(b"ping\n")
        spindle.wait_fd_read(s, 5)
        result["reply"] = s.recv(100).decode()
    return _json(start_response, result)


async def _answer():
    return 42


def wait(environ, start_response):
    try:
        value = spindle.wait(_answer(), timeout=1)
    except RuntimeError as e:
        return _json(start_response, {"error": "RuntimeError", "message": str(e)})
    return _json(start_response, {"value": value})


def spin(environ, start_response):
    FLAG["set"] = False
    FLAG["spinning"] = True
    turns = 0
    deadline = time.monotonic() + 5
    try:
        # Without a real yield in suspend(), /flag could not run until this
        # loop gave up: it would then find no spinner.
        while not FLAG["set"] and time.monotonic() < deadline:
            uwsgi.suspend()
            turns += 1
    finally:
        FLAG["spinning"] = False
    return _json(start_response, {"flag_seen": FLAG["set"], "turns": turns})


def flag(environ, start_response):
    # Only a running /spin can see the flag, so say whether one was running.
    spinning = FLAG.get("spinning", False)
    if spinning:
        FLAG["set"] = True
    return _json(start_response, {"spinner_was_running": spinning})


def str_chunk(environ, start_response):
    s = _q(environ).get("s", "")
    yield ""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield s
    yield b"done"


ROUTES = {"/connect": connect, "/wait": wait, "/spin": spin, "/flag": flag, "/str": str_chunk}


def application(environ, start_response):
    return ROUTES[environ["PATH_INFO"]](environ, start_response)
