"""Benchmark app: a 100 ms IOLoop timer per request, waited with spindle.wait.

    spindle --tornado 1000 --wsgi-file t/bench/apps/tornado_timer_wait.py

The request hands Tornado a Future that IOLoop.current().call_later(0.1, ...)
resolves, and parks on it; runs under either suspend engine.
"""

import spindle
from tornado.concurrent import Future, future_set_result_unless_cancelled
from tornado.ioloop import IOLoop

DELAY = 0.1
BODY = b"timer\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    fut = Future()
    IOLoop.current().call_later(DELAY, future_set_result_unless_cancelled, fut, None)
    spindle.wait(fut)
    start_response("200 OK", HEADERS)
    return [BODY]
