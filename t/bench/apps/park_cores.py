"""Benchmark driver: parks N async cores in spindle.sleep inside one worker,
with no socket at all (the C100K row "cores").

GET /park?n=100000&s=60 answers at once; a moment later, from the loop, the
worker starts n functions each on a core of its own (spindle._run_on_core),
and each sleeps s seconds. The shared counter of _parked.py (BENCH_PARKED_FILE)
says how many are asleep, so the benchmark can watch them park without a core
to answer it.
"""

import os
import sys
from urllib.parse import parse_qs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _parked  # noqa: E402
import spindle  # noqa: E402


def park(n, seconds):
    def sleeper():
        _parked.parked(1)
        try:
            spindle.sleep(seconds)
        finally:
            _parked.parked(-1)
    for _ in range(n):
        spindle._run_on_core(sleeper)


def application(environ, start_response):
    q = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if environ["PATH_INFO"] == "/park":
        spindle.call_later(0, park, int(q.get("n", "100000")), float(q.get("s", "60")))
    body = b"ok\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
