"""uWSGI's own async sleep (uwsgi.async_sleep + yield ""), as its docs show it.

Kept to check uWSGI --async N --ugreen: on CPython 3.11 its workers crash
once requests overlap, and async_sleep takes whole seconds (0.1 -> 0), so the
benchmark measures uWSGI's async row with sleep_uwsgi_timerfd.py on
--greenlet instead (see RESULTS.md).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _parked  # noqa: E402
import uwsgi  # noqa: E402


def application(environ, start_response):
    seconds = _parked.seconds(environ)
    t0 = time.monotonic()
    uwsgi.async_sleep(seconds)
    yield b""
    body = b"slept %.3f\n" % (time.monotonic() - t0)
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    yield body


def suspending(environ, start_response):
    """The other spelling: uwsgi.suspend() switches away from inside the app,
    with its Python frames still on the uGreen stack."""
    t0 = time.monotonic()
    uwsgi.async_sleep(_parked.seconds(environ))
    uwsgi.suspend()
    body = b"slept %.3f\n" % (time.monotonic() - t0)
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


_plain = application


def application(environ, start_response):  # noqa: F811 - dispatches on the path
    if environ.get("PATH_INFO") == "/suspend":
        return suspending(environ, start_response)
    return _plain(environ, start_response)
