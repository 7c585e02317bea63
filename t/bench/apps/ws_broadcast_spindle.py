"""Benchmark app: one message to every websocket of the worker, on
spindle.websocket() objects.

The natural broadcast: a set of the open websocket objects; whoever receives
a message sends it to each of them in a loop (any request of the serving
thread may send on another's websocket). A plain GET is answered with "ws";
the shared counter (_parked.py) holds how many websockets are parked in
their receive loop.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _parked  # noqa: E402
import spindle  # noqa: E402

PLAIN = b"ws\n"
clients = set()


def application(environ, start_response):
    if "HTTP_SEC_WEBSOCKET_KEY" not in environ:
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(PLAIN)))])
        return [PLAIN]
    with spindle.websocket(environ) as ws:
        clients.add(ws)
        _parked.parked(1)
        try:
            for msg in ws:
                for c in list(clients):
                    try:
                        c.send(msg)
                    except spindle.WebSocketClosed:
                        clients.discard(c)
        finally:
            clients.discard(ws)
            _parked.parked(-1)
    return []
