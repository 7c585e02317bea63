"""Benchmark app: each request sleeps in gevent.sleep (0.1 s, or ?s=SECONDS).

Served by gunicorn -k gevent and by uWSGI --gevent.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _parked  # noqa: E402
import gevent  # noqa: E402

application = _parked.sleep_app(gevent.sleep)
