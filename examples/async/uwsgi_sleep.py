"""A uWSGI async app, unmodified: it sleeps without blocking the worker.

    uwsgi   --http-socket :9090 --async 50 --ugreen --wsgi-file examples/async/uwsgi_sleep.py
    spindle --http-socket :9090 --async 50 --wsgi-file examples/async/uwsgi_sleep.py

/?s=0.2          uwsgi.async_sleep(s), then `yield b""` hands control to the loop
/suspend?s=0.2   the same with uwsgi.suspend() in place of the empty yield
/returned?s=0.2  the older idiom `yield uwsgi.async_sleep(s)` (it returns b"")
"""

import os
import time
from urllib.parse import parse_qs

import uwsgi


def application(env, start_response):
    qs = parse_qs(env.get("QUERY_STRING", ""))
    seconds = float(qs.get("s", ["0.2"])[0])
    start_response("200 OK", [("Content-Type", "text/plain")])
    t0 = time.time()
    if env["PATH_INFO"] == "/returned":
        yield uwsgi.async_sleep(seconds)
    else:
        uwsgi.async_sleep(seconds)
        if env["PATH_INFO"] == "/suspend":
            uwsgi.suspend()
        else:
            yield b""
    yield ("slept %.3f in worker %d pid %d\n"
           % (time.time() - t0, uwsgi.worker_id(), os.getpid())).encode()
