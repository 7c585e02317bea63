"""Benchmark app: one message to every websocket of the worker, under uWSGI
--gevent with uWSGI's websocket API.

uWSGI 2.0's websocket_send() sends on the calling request's websocket only
(2.0.21 has no request_context argument), so, as in uWSGI's own gevent chat
example, each request's greenlet watches its connection (uwsgi.connection_fd())
itself and is woken by a gevent Event: set by a read watcher on that fd
(then websocket_recv_nb() takes the messages) or by a broadcast (then it
sends the latest message). websocket_recv_nb() is only called when the
socket is readable: each call may send uWSGI's keep-alive ping, and the
pongs would wake every greenlet once more. A plain GET is answered with
"ws"; the shared counter (_parked.py) holds how many websockets are waiting.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _parked  # noqa: E402
import gevent  # noqa: E402
import gevent.event  # noqa: E402
import uwsgi  # noqa: E402

PLAIN = b"ws\n"
listeners = set()  # one Event per websocket
latest = [0, b""]  # broadcast number, message


def broadcast(msg):
    latest[0] += 1
    latest[1] = msg
    for wake in list(listeners):
        wake.set()


def application(environ, start_response):
    if "HTTP_SEC_WEBSOCKET_KEY" not in environ:
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(PLAIN)))])
        return [PLAIN]
    uwsgi.websocket_handshake(environ["HTTP_SEC_WEBSOCKET_KEY"], environ.get("HTTP_ORIGIN", ""))
    wake = gevent.event.Event()
    readable = [False]

    def on_readable():
        readable[0] = True
        wake.set()

    watcher = gevent.get_hub().loop.io(uwsgi.connection_fd(), 1)
    watcher.start(on_readable)
    seen = latest[0]
    listeners.add(wake)
    _parked.parked(1)
    try:
        while True:
            wake.wait()
            wake.clear()
            while readable[0]:
                msg = uwsgi.websocket_recv_nb()
                if not msg:
                    readable[0] = False
                else:
                    broadcast(msg)
            if latest[0] != seen:
                seen = latest[0]
                uwsgi.websocket_send(latest[1])
    finally:
        watcher.stop()
        listeners.discard(wake)
        _parked.parked(-1)
