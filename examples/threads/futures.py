"""spindle.wait() on work done elsewhere: a ThreadPoolExecutor, an asyncio
coroutine, an asyncio future of a loop the app runs in its own thread.

    /pool?s=S             waits for a pool job that sleeps S seconds; {"slept": S}
    /pool_error           the job raises ValueError: so does wait()
    /pool_timeout?s=S     a 2 s job, waited at most S seconds: TimeoutError
    /coro?s=S             waits for an `async def` that awaits asyncio.sleep(S)
    /aio_future?s=S       a future of the app's own asyncio loop (another
                          thread), completed by that loop after S seconds
    /hello                answers at once (to show the worker is not blocked)
"""

import asyncio
import concurrent.futures
import json
import threading
import time
from urllib.parse import parse_qs

import spindle

POOL = concurrent.futures.ThreadPoolExecutor(max_workers=16)
_app_loop = None
_app_loop_lock = threading.Lock()


def app_loop():
    """An asyncio loop the app runs in a thread of its own (made in the
    worker, on first use)."""
    global _app_loop
    with _app_loop_lock:
        if _app_loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, daemon=True).start()
            _app_loop = loop
    return _app_loop


def job(seconds):
    time.sleep(seconds)
    return seconds


def failing_job():
    raise ValueError("the job failed")


async def nap(seconds):
    await asyncio.sleep(seconds)
    return {"napped": seconds, "in_thread": threading.current_thread().name}


def future_of_app_loop(seconds):
    loop = app_loop()
    made = concurrent.futures.Future()

    def make():
        fut = loop.create_future()
        loop.call_later(seconds, fut.set_result, "from the app's loop")
        made.set_result(fut)

    loop.call_soon_threadsafe(make)
    return made.result(5)


def application(environ, start_response):
    q = parse_qs(environ.get("QUERY_STRING", ""))
    s = float(q.get("s", ["0"])[0])
    path = environ["PATH_INFO"]
    try:
        if path == "/pool":
            out = {"slept": spindle.wait(POOL.submit(job, s))}
        elif path == "/pool_error":
            out = {"value": spindle.wait(POOL.submit(failing_job))}
        elif path == "/pool_timeout":
            out = {"value": spindle.wait(POOL.submit(job, 2), timeout=s)}
        elif path == "/coro":
            out = spindle.wait(nap(s))
        elif path == "/aio_future":
            out = {"value": spindle.wait(future_of_app_loop(s))}
        elif path == "/hello":
            out = {"hello": spindle.core_id()}
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
    except Exception as e:
        out = {"error": type(e).__name__, "message": str(e)}
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
