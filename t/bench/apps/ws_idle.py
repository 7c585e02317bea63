"""Benchmark app: an idle websocket in uWSGI's API, parked in websocket_recv().

Run unchanged by spindle and by uWSGI --gevent. Each websocket echoes what it
gets (the benchmark sends nothing, so it stays parked); the shared counter
(_parked.py) holds how many are parked in the receive loop. A plain GET (the
servers' readiness check) is answered with "ws".
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _parked  # noqa: E402
import uwsgi  # noqa: E402

PLAIN = b"ws\n"


def application(environ, start_response):
    if "HTTP_SEC_WEBSOCKET_KEY" not in environ:
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(PLAIN)))])
        return [PLAIN]
    uwsgi.websocket_handshake(environ["HTTP_SEC_WEBSOCKET_KEY"], environ.get("HTTP_ORIGIN", ""))
    _parked.parked(1)
    try:
        while True:
            uwsgi.websocket_send(uwsgi.websocket_recv())
    finally:
        _parked.parked(-1)
