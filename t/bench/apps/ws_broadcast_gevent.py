"""Benchmark app: one message to every websocket of the worker, under
gunicorn's GeventWebSocketWorker (python3-gevent-websocket).

gevent-websocket's natural broadcast: a set of the open websocket objects;
whoever receives a message sends it to each of them in a loop. A plain GET
is answered with "ws"; the shared counter (_parked.py) holds how many
websockets are parked in ws.receive().
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _parked  # noqa: E402
from geventwebsocket.exceptions import WebSocketError  # noqa: E402

PLAIN = b"ws\n"
clients = set()


def application(environ, start_response):
    ws = environ.get("wsgi.websocket")
    if ws is None:
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(PLAIN)))])
        return [PLAIN]
    clients.add(ws)
    _parked.parked(1)
    try:
        while True:
            msg = ws.receive()
            if msg is None:
                break
            for c in list(clients):
                try:
                    c.send(msg)
                except WebSocketError:
                    clients.discard(c)
    finally:
        clients.discard(ws)
        _parked.parked(-1)
    return []
