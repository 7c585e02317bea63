"""uWSGI's async sleep demo, unchanged: each request sleeps without holding
the worker, so --async 100 serves 100 sleepers at once.

    ./spindle --http-socket 127.0.0.1:9090 --wsgi-file examples/uwsgi_api/async_sleep.py --async 100
    curl '127.0.0.1:9090/?s=0.5'          # sleep, then answer
    curl '127.0.0.1:9090/yielded?s=0.5'   # the `yield uwsgi.async_sleep(s)` spelling
"""

import time
from urllib.parse import parse_qs

import uwsgi


def _seconds(environ):
    q = parse_qs(environ.get("QUERY_STRING", ""))
    return float(q.get("s", ["1"])[-1])


def application(environ, start_response):
    seconds = _seconds(environ)
    t0 = time.monotonic()
    if environ["PATH_INFO"] == "/yielded":
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield uwsgi.async_sleep(seconds)
    else:
        uwsgi.async_sleep(seconds)
        yield ""
        start_response("200 OK", [("Content-Type", "text/plain")])
    yield ("slept %.3f in worker %d\n" % (time.monotonic() - t0, uwsgi.worker_id())).encode()
