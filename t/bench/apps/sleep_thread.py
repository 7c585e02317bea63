"""Benchmark app: each request blocks its thread 10 ms in time.sleep (a
stand-in for a database driver or any blocking C call)."""

import time

BODY = b"slept\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    time.sleep(0.01)
    start_response("200 OK", HEADERS)
    return [BODY]
