"""Benchmark app: each request sleeps in gevent.sleep (0.1 s, or ?s=SECONDS).

Served by gunicorn -k gevent and by uWSGI --gevent.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _parked  # noqa: E402
import gevent  # noqa: E402

BODY = b"slept\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    seconds = _parked.seconds(environ)
    _parked.parked(1)
    try:
        gevent.sleep(seconds)
    finally:
        _parked.parked(-1)
    start_response("200 OK", HEADERS)
    return [BODY]
