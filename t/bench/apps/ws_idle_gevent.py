"""Benchmark app: an idle websocket under gunicorn's GeventWebSocketWorker
(python3-gevent-websocket), parked in ws.receive().

The same echo as ws_idle.py in gevent-websocket's API: environ["wsgi.websocket"]
is the upgraded connection. The shared counter (_parked.py) holds how many
are parked in the receive loop; a plain GET is answered with "ws".
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _parked  # noqa: E402

PLAIN = b"ws\n"


def application(environ, start_response):
    ws = environ.get("wsgi.websocket")
    if ws is None:
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(PLAIN)))])
        return [PLAIN]
    _parked.parked(1)
    try:
        while True:
            msg = ws.receive()
            if msg is None:
                break
            ws.send(msg)
    finally:
        _parked.parked(-1)
    return []
