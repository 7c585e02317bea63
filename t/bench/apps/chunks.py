"""Benchmark app: a generator that yields three chunks and sets no Content-Length.

The server has to frame the body itself (chunked on HTTP/1.1, or close the
connection), and a server with schedule_fix re-queues the core after each yield.
"""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"one"
    yield b"two"
    yield b"three"
