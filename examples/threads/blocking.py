"""An app for --threads N: requests that block in C hold only their thread.

    spindle --http-socket 127.0.0.1:9090 --wsgi-file examples/threads/blocking.py --threads 4

    /sleep?s=S      time.sleep(S) (blocks the thread, GIL released)
    /csleep?s=S     libc usleep() through ctypes (a blocking C call)
    /who            which thread and core serve this request
    /gilstate?s=S   sleeps S seconds, then sorts a list with libc qsort() and a ctypes callback:
                    every comparison enters Python through PyGILState_Ensure()
    /local?v=V&s=S  stores V in a threading.local, parks S seconds with
                    spindle.sleep, reads it back (per request under fibers)
    /pool?s=S       spindle.wait() on a ThreadPoolExecutor job sleeping S seconds
    /pid            the worker's pid
    /busy           how many /sleep requests are sleeping right now
Every answer is JSON and names the serving thread and core.
"""

import concurrent.futures
import ctypes
import ctypes.util
import json
import os
import threading
import time
from urllib.parse import parse_qs

import spindle

LIBC = ctypes.CDLL(ctypes.util.find_library("c"))
CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
LOCAL = threading.local()
POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8)
SLEEPING = [0]
SLEEPING_LOCK = threading.Lock()


def sort_in_c(values):
    arr = (ctypes.c_int * len(values))(*values)
    calls = []

    def cmp(a, b):
        calls.append(threading.get_ident())
        return a[0] - b[0]

    LIBC.qsort(arr, len(arr), ctypes.sizeof(ctypes.c_int), CMP(cmp))
    return list(arr), len(calls)


def application(environ, start_response):
    q = parse_qs(environ.get("QUERY_STRING", ""))
    s = float(q.get("s", ["0"])[0])
    path = environ["PATH_INFO"]
    out = {"thread": threading.get_ident(), "core": spindle.core_id(), "pid": os.getpid()}
    if path == "/sleep":
        t0 = time.monotonic()
        with SLEEPING_LOCK:
            SLEEPING[0] += 1
        try:
            time.sleep(s)
        finally:
            with SLEEPING_LOCK:
                SLEEPING[0] -= 1
        out["slept"] = round(time.monotonic() - t0, 3)
    elif path == "/busy":
        out["sleeping"] = SLEEPING[0]
    elif path == "/csleep":
        LIBC.usleep(int(s * 1e6))
    elif path == "/gilstate":
        time.sleep(s)
        out["sorted"], out["callbacks"] = sort_in_c([5, 3, 9, 1, 7, 2, 8])
    elif path == "/local":
        LOCAL.value = q.get("v", [""])[0]
        spindle.sleep(s)
        out["value"] = LOCAL.value
    elif path == "/pool":
        out["slept"] = spindle.wait(POOL.submit(time.sleep, s)) or s
    elif path not in ("/who", "/pid"):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(out).encode()]
