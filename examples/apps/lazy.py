"""--lazy-apps: this module is imported in each worker after fork, so the
thread it starts at import runs in the worker that serves the request.
VERSION (from version.txt beside it, if any) shows which code a worker
loaded across a reload."""
import os
import threading
import time

LOADED_IN = os.getpid()
HERE = os.path.dirname(os.path.abspath(__file__))
try:
    with open(os.path.join(HERE, "version.txt")) as f:
        VERSION = f.read().strip()
except OSError:
    VERSION = "1"

ticks = 0


def _tick():
    global ticks
    while True:
        ticks += 1
        time.sleep(0.02)


threading.Thread(target=_tick, daemon=True).start()


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%d %d %s %d" % (LOADED_IN, os.getpid(), VERSION, ticks)).encode()]
