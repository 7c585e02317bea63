"""A plain WSGI generator, unmodified, served on Tornado's IOLoop.

    spindle --http-socket 127.0.0.1:9090 --tornado 50 --wsgi-file examples/tornado/generator.py
    curl -i 127.0.0.1:9090/

The body has no Content-Length, so it goes out chunked; after each yield the
core is put back on the IOLoop (add_callback) and resumed from there, so one
stream never holds the loop and the response reads "onetwothree".
"""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"one"
    yield b"two"
    yield b"three"
