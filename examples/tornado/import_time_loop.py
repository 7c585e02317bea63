"""The loop an app captures while it is imported is the loop that runs.

    spindle --http-socket 127.0.0.1:9090 --processes 2 --tornado 10 \\
        --wsgi-file examples/tornado/import_time_loop.py
    curl 127.0.0.1:9090/state

As uWSGI's Tornado docs tell apps to do, this module takes the IOLoop at
import time -- in the master, before any worker exists -- and registers a
callback, two timers and an fd handler on it. Each worker runs that very
object, with a selector and wake-up pipe of its own, so all four fire in
every worker.

/state      this worker's view: whether IOLoop.current() and
            asyncio.get_event_loop() are the objects captured at import,
            whether the master's epoll fd and wake-up pipe are still in use
            here, what ran, and whether this request sees a running loop
/wait       spindle.wait on a future an IOLoop timer resolves, then the same
            "running" check (a request resumed from a loop callback)
/switch     (--greenlet) the request parks by switching to its parent and an
            IOLoop timer switches back to it, as uWSGI's Tornado docs do;
            says whether the timer callback saw the loop running (it must)
            and whether the request does afterwards (it must not)
"""

import asyncio
import greenlet
import json
import os
import socket
import time

import spindle
from tornado.concurrent import Future
from tornado.ioloop import IOLoop

io_loop = IOLoop.instance()
aio_loop = asyncio.get_event_loop()
MASTER = {
    "pid": os.getpid(),
    "pipe_inode": os.fstat(aio_loop._ssock.fileno()).st_ino,
}
RAN = {"callback": 0, "call_later": 0, "add_timeout": 0, "handler": 0}


def count(what):
    RAN[what] += 1


io_loop.add_callback(count, "callback")
io_loop.call_later(0.05, count, "call_later")
io_loop.add_timeout(time.time() + 0.1, count, "add_timeout")

# A socket that is readable in every worker (the byte is never read).
_r, _w = socket.socketpair()
_w.send(b"x")


def on_readable(fd, events):
    count("handler")
    io_loop.remove_handler(fd)


io_loop.add_handler(_r.fileno(), on_readable, IOLoop.READ)


def running():
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def master_epoll_in_use():
    """Whether an epoll set that watches the master's wake-up pipe is open
    here (an epoll fd's fdinfo names the inode of every fd in its set)."""
    mark = "ino:%x" % MASTER["pipe_inode"]
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            with open("/proc/self/fdinfo/" + fd) as f:
                if any(line.startswith("tfd:") and mark in line.split() for line in f):
                    return True
        except OSError:
            pass
    return False


def state():
    aio = asyncio.get_event_loop()
    return {
        "pid": os.getpid(),
        "master_pid": MASTER["pid"],
        "worker_id": spindle.worker_id(),
        "same_ioloop": IOLoop.current() is io_loop,
        "same_asyncio_loop": aio is aio_loop,
        "ioloop_wraps_it": io_loop.asyncio_loop is aio_loop,
        "selector": type(aio._selector).__name__,
        "master_epoll_in_use": master_epoll_in_use(),
        "pipe_is_new": os.fstat(aio._ssock.fileno()).st_ino != MASTER["pipe_inode"],
        "ran": dict(RAN),
        "running": running(),
    }


def reply(start_response, obj):
    body = json.dumps(obj, sort_keys=True).encode() + b"\n"
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def switch(start_response):
    me = greenlet.getcurrent()
    seen = {}

    def back():
        seen["callback_sees_running"] = running()
        me.switch()

    if me.parent is not None:  # a greenlet only under --greenlet
        IOLoop.current().call_later(0.05, back)
        me.parent.switch()
    return reply(start_response, dict(seen, running=running()))


def application(environ, start_response):
    if environ["PATH_INFO"] == "/switch":
        return switch(start_response)
    if environ["PATH_INFO"] == "/wait":
        done = Future()
        IOLoop.current().call_later(0.05, done.set_result, "timer")
        got = spindle.wait(done)
        return reply(start_response, {"waited": got, "running": running()})
    return reply(start_response, state())
