"""A request parked on an fd that another request closes. /wait parks on one
end of a socket pair (up to ?t= seconds); /close closes both ends while it
waits, so the next sockets the worker opens -- new client connections --
reuse the fd numbers. Those connections must be served, and the waiter must
still come back (the engine keeps no stale registration for the old fd)."""
import socket

import spindle

_pair = []


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/wait":
        a, b = socket.socketpair()
        _pair[:] = [a, b]
        t = float(environ.get("QUERY_STRING", "").partition("t=")[2] or 3)
        try:
            ready = spindle.wait_fd_read(a.fileno(), t)
            body = b"ready" if ready else b"timeout"
        except OSError as e:
            body = ("error %s" % e.errno).encode()
    elif path == "/parked":
        body = b"yes" if _pair else b"no"
    elif path == "/close":
        for s in _pair:
            s.close()
        body = b"closed"
    else:
        body = b"hello"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
