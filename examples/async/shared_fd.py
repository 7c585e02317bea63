"""Two requests waiting on the same fd: /wait parks on a pipe shared by the
whole worker, /poke makes it readable. Every waiter must wake, under every
loop engine (the Tornado IOLoop takes one handler per fd, libev many)."""
import os

import spindle

_r, _w = os.pipe()
os.set_blocking(_r, False)
_waiting = [0]


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/wait":
        _waiting[0] += 1
        ready = spindle.wait_fd_read(_r, 10)
        _waiting[0] -= 1
        body = b"ready" if ready else b"timeout"
    elif path == "/waiting":
        body = str(_waiting[0]).encode()
    elif path == "/poke":
        os.write(_w, b"x")
        body = b"poked"
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
