"""C code inside requests that park: ctypes callbacks (which take the GIL with
PyGILState_Ensure), a C extension doing the same, and a C stack overflow.

    gcc -shared -fPIC -O0 $(python3-config --includes) examples/async/nativeext.c \\
        -o /tmp/ext/nativeext$(python3-config --extension-suffix)
    spindle --http-socket 127.0.0.1:9090 --async 8 --pythonpath /tmp/ext \\
        --wsgi-file examples/async/native.py

/qsort?n=500&s=0.05&park_every=0   parks s seconds, then sorts n ints with
                                   libc qsort and a Python comparator (a
                                   ctypes callback); park_every=K also parks
                                   inside every K-th comparison
/ext?mode=ensured|released&park=1  calls back into Python through nativeext
                                   (PyGILState_Ensure), before and after a
                                   park; the callback parks too when park=1
/overflow                          nativeext.overflow(): recursion in C until
                                   the fiber's stack ends (the worker dies)
/pid                               the worker's pid
"""

import ctypes
import json
import os
import random
from urllib.parse import parse_qs

import spindle

LIBC = ctypes.CDLL("libc.so.6")
COMPARE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                           ctypes.POINTER(ctypes.c_int))
LIBC.qsort.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, COMPARE]
LIBC.qsort.restype = None


def query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def reply(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode() + b"\n"
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def qsort(q):
    n = int(q.get("n", "500"))
    park_every = int(q.get("park_every", "0"))
    spindle.sleep(float(q.get("s", "0.05")))
    values = [random.randrange(-10**6, 10**6) for _ in range(n)]
    array = (ctypes.c_int * n)(*values)
    calls = {"n": 0, "parks": 0, "cores": set()}

    def compare(a, b):
        calls["n"] += 1
        calls["cores"].add(spindle.core_id())
        if park_every and calls["n"] % park_every == 0:
            calls["parks"] += 1
            spindle.sleep(0.001)
        return (a[0] > b[0]) - (a[0] < b[0])

    LIBC.qsort(array, n, ctypes.sizeof(ctypes.c_int), COMPARE(compare))
    return {"sorted": list(array) == sorted(values), "n": n, "compares": calls["n"],
            "parks": calls["parks"], "callback_cores": sorted(calls["cores"]),
            "core_id": spindle.core_id()}


def ext(q):
    import nativeext  # built by whoever serves this app, found through --pythonpath

    call = {"ensured": nativeext.call_ensured, "released": nativeext.call_released}[
        q.get("mode", "ensured")]
    park = q.get("park", "1") == "1"
    me = spindle.core_id()

    def callback():
        if park:
            spindle.sleep(0.02)
        return {"core_id": spindle.core_id(), "gilstate": list(nativeext.gilstate())}

    out = {"core_id": me, "gilstate_before": list(nativeext.gilstate())}
    out["first"] = call(callback)
    spindle.sleep(float(q.get("s", "0.05")))
    out["gilstate_after_park"] = list(nativeext.gilstate())
    out["second"] = call(callback)
    out["gilstate_end"] = list(nativeext.gilstate())
    return out


def overflow(q):
    import nativeext

    return {"returned": nativeext.overflow()}


def pid(q):
    return {"pid": os.getpid()}


ROUTES = {"/qsort": qsort, "/ext": ext, "/overflow": overflow, "/pid": pid}


def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        return reply(start_response, {"error": "not found"}, "404 Not Found")
    return reply(start_response, route(query(environ)))
