"""Requests that wait for each other: fds, and suspend/resume by core id.

    spindle --http-socket 127.0.0.1:9090 --async 8 --wsgi-file examples/async/rendezvous.py

/pipe_wait?key=K&timeout=T   makes a pipe and parks in spindle.wait_fd_read on
                             it (T seconds, or no limit without T); answers
                             whether it became ready and what was read
/pipe_write?key=K&data=D     writes D into the pipe /pipe_wait?key=K waits on
                             (409 while there is no such waiter yet)
/socket_write?timeout=T      spindle.wait_fd_write on a socket that has room,
                             then on one whose buffer is full
/suspend?key=K               spindle.suspend() until /resume?key=K wakes it
/resume?key=K                spindle.resume(core of the /suspend?key=K request)
                             (409 while there is no such request)
/resume_core?id=N            spindle.resume(N) as is
/sleep?key=K&s=S             spindle.sleep(S), its core id kept under K
/resume_sleeper?key=K        spindle.resume() on the core sleeping under K
/waiting                     the keys of the requests parked right now

The keys live in module globals: serve with one worker.
"""

import json
import os
import socket
import time
from urllib.parse import parse_qs

import spindle

PIPES = {}        # key -> write end of the pipe its /pipe_wait reads
SUSPENDED = {}    # key -> core id parked in spindle.suspend()
RESUMED_BY = {}   # key -> core id of the request that resumed it
SLEEPING = {}     # key -> core id parked in spindle.sleep()


def query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def reply(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode() + b"\n"
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def pipe_wait(environ, start_response):
    q = query(environ)
    key = q["key"]
    timeout = float(q["timeout"]) if "timeout" in q else None
    r, w = os.pipe()
    PIPES[key] = w
    t0 = time.monotonic()
    try:
        ready = spindle.wait_fd_read(r, timeout=timeout)
        waited = time.monotonic() - t0
        data = os.read(r, 4096) if ready else b""
    finally:
        PIPES.pop(key, None)
        os.close(r)
        os.close(w)
    return reply(start_response, {"ready": ready, "data": data.decode("latin-1"),
                                  "waited": waited, "core_id": spindle.core_id()})


def pipe_write(environ, start_response):
    q = query(environ)
    w = PIPES.get(q["key"])
    if w is None:
        return reply(start_response, {"written": 0}, "409 Conflict")
    n = os.write(w, q.get("data", "x").encode("latin-1"))
    return reply(start_response, {"written": n})


def socket_write(environ, start_response):
    timeout = float(query(environ).get("timeout", "0.3"))
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        t0 = time.monotonic()
        room = spindle.wait_fd_write(a.fileno(), timeout=5)
        t_room = time.monotonic() - t0
        filled = 0
        for _ in range(1 << 16):  # a socketpair buffer holds well under 4 GiB
            try:
                filled += a.send(b"y" * 65536)
            except BlockingIOError:
                break
        t0 = time.monotonic()
        full = spindle.wait_fd_write(a, timeout=timeout)  # an object with fileno() works too
        t_full = time.monotonic() - t0
        readable = spindle.wait_fd_read(b.fileno(), timeout=5)
    finally:
        a.close()
        b.close()
    return reply(start_response, {"room": room, "t_room": t_room, "filled": filled,
                                  "full": full, "t_full": t_full, "readable": readable})


def suspend(environ, start_response):
    key = query(environ)["key"]
    me = spindle.core_id()
    SUSPENDED[key] = me
    t0 = time.monotonic()
    try:
        spindle.suspend()
    finally:
        SUSPENDED.pop(key, None)
    return reply(start_response, {"core_id": me, "resumed_by": RESUMED_BY.pop(key, None),
                                  "waited": time.monotonic() - t0})


def resume(environ, start_response):
    key = query(environ)["key"]
    target = SUSPENDED.get(key)
    if target is None:
        return reply(start_response, {"ok": False}, "409 Conflict")
    RESUMED_BY[key] = spindle.core_id()
    ok = spindle.resume(target)
    return reply(start_response, {"ok": ok, "target": target, "core_id": spindle.core_id()})


def resume_core(environ, start_response):
    core = int(query(environ)["id"])
    return reply(start_response, {"ok": spindle.resume(core), "core_id": spindle.core_id()})


def sleep(environ, start_response):
    q = query(environ)
    key = q["key"]
    SLEEPING[key] = spindle.core_id()
    t0 = time.monotonic()
    try:
        spindle.sleep(float(q.get("s", "1")))
    finally:
        SLEEPING.pop(key, None)
    return reply(start_response, {"slept": time.monotonic() - t0, "core_id": spindle.core_id()})


def resume_sleeper(environ, start_response):
    target = SLEEPING.get(query(environ)["key"])
    if target is None:
        return reply(start_response, {"ok": False}, "409 Conflict")
    return reply(start_response, {"ok": spindle.resume(target), "target": target})


def waiting(environ, start_response):
    return reply(start_response, {"pipes": sorted(PIPES), "suspended": sorted(SUSPENDED),
                                  "sleeping": sorted(SLEEPING)})


ROUTES = {
    "/pipe_wait": pipe_wait, "/pipe_write": pipe_write, "/socket_write": socket_write,
    "/suspend": suspend, "/resume": resume, "/resume_core": resume_core,
    "/sleep": sleep, "/resume_sleeper": resume_sleeper, "/waiting": waiting,
}


def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", "10")])
        return [b"not found\n"]
    return route(environ, start_response)
