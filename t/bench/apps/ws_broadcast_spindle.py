"""Benchmark app: one message to every websocket of the worker, in uWSGI's
websocket API plus spindle.suspend()/resume().

uwsgi.websocket_send() sends on the calling request's websocket only, so a
message for everyone is handed to each websocket's own core: the cores of the
listeners wait in spindle.suspend(), and the sender (path /send), parked in
websocket_recv(), stores the message and resumes every one of them; each
sends it on its own connection. A listener does not read its socket while it
waits: a client that goes away is noticed when a send to it fails.

A plain GET is answered with "ws". The shared counter (_parked.py) holds how
many websockets are parked.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _parked  # noqa: E402
import spindle  # noqa: E402
import uwsgi  # noqa: E402

PLAIN = b"ws\n"
listeners = set()  # core ids parked in suspend()
latest = [0, b""]  # broadcast number, message


def broadcast(msg):
    latest[0] += 1
    latest[1] = msg
    for core in list(listeners):
        spindle.resume(core)


def sender():
    while True:
        msg = uwsgi.websocket_recv()
        broadcast(msg)
        uwsgi.websocket_send(msg)


def listener():
    me, seen = spindle.core_id(), latest[0]
    listeners.add(me)
    try:
        while True:
            spindle.suspend()
            if latest[0] != seen:
                seen = latest[0]
                uwsgi.websocket_send(latest[1])
    finally:
        listeners.discard(me)


def application(environ, start_response):
    if "HTTP_SEC_WEBSOCKET_KEY" not in environ:
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(PLAIN)))])
        return [PLAIN]
    uwsgi.websocket_handshake(environ["HTTP_SEC_WEBSOCKET_KEY"], environ.get("HTTP_ORIGIN", ""))
    _parked.parked(1)
    try:
        (sender if environ["PATH_INFO"] == "/send" else listener)()
    finally:
        _parked.parked(-1)
