"""Benchmark app: a 100 ms IOLoop timer per request, greenlet style.

The way uWSGI's tornado loop engine documents it, with no server API: the
request greenlet gives the IOLoop its own switch as the timer callback and
switches to its parent (the loop). Runs on uWSGI --tornado N --greenlet and
on spindle --tornado N --greenlet alike.
"""

import greenlet
from tornado.ioloop import IOLoop

DELAY = 0.1
BODY = b"timer\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    me = greenlet.getcurrent()
    IOLoop.current().call_later(DELAY, me.switch)
    me.parent.switch()
    start_response("200 OK", HEADERS)
    return [BODY]
