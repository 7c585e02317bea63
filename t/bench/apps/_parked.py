"""Shared by the sleep apps: how long to sleep, and a counter of parked requests.

The sleep is 0.1 s, or `?s=SECONDS`. When the environment names a file in
BENCH_PARKED_FILE, the app keeps the number of requests currently asleep in
its first 8 bytes (a shared mapping), so the benchmark can see how many are
parked without asking the server -- which, with every core parked, could not
answer.
"""

import mmap
import os
import struct

DEFAULT = 0.1
_path = os.environ.get("BENCH_PARKED_FILE")
_map = None
if _path:
    with open(_path, "r+b") as _f:
        _map = mmap.mmap(_f.fileno(), 8)


def seconds(environ):
    qs = environ.get("QUERY_STRING")
    if qs and qs.startswith("s="):
        return float(qs[2:].split("&", 1)[0])
    return DEFAULT


def parked(delta):
    """Adds delta to the shared counter (a no-op when there is none)."""
    if _map is not None:
        (n,) = struct.unpack_from("q", _map, 0)
        struct.pack_into("q", _map, 0, n + delta)


BODY = b"slept\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def sleep_app(sleep):
    """A WSGI app whose every request calls sleep(seconds), counted as parked."""

    def application(environ, start_response):
        parked(1)
        try:
            sleep(seconds(environ))
        finally:
            parked(-1)
        start_response("200 OK", HEADERS)
        return [BODY]

    return application
