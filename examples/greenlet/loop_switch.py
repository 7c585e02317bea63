"""Requests resumed by loop callbacks: spindle.call_later() and add_callback().

The uWSGI greenlet pattern, on any loop engine (serve with --greenlet):

    me = greenlet.getcurrent()
    spindle.call_later(0.2, me.switch)   # the loop brings us back
    me.parent.switch()                   # step out to the loop until then

and, on any suspend engine, a loop callback that spindle.resume()s a request
parked in spindle.suspend(). Serve it with one worker: the callbacks report
to module globals that later requests read.

    spindle --http-socket 127.0.0.1:9090 --greenlet --async 30 --processes 1 \\
            --wsgi-file examples/greenlet/loop_switch.py
    spindle --http-socket 127.0.0.1:9090 --tornado 30 --processes 1 \\
            --wsgi-file examples/greenlet/loop_switch.py      # fibers: /resume only

/switch?s=0.2             (--greenlet) call_later(s, me.switch, ...), then
                          me.parent.switch() until the loop switches back
/resume?s=0.2             call_later(s, wake) where wake() resume()s this
                          request, parked in spindle.suspend()
/soon?via=switch|resume   the same through add_callback(): runs soon, never
                          inside add_callback() itself
/cancel?tag=T&s=0.1       schedules two calls, cancels one, sleeps 3*s; the
                          cancelled one must not have run, the other must have
/raise?tag=T              a callback that raises, then one that does not
/fired?tag=T              what the callbacks reported under tag T
/churn?n=2000             many calls (half of the call_later ones cancelled);
                          answers whether every reference they held was freed
/errors                   what bad calls raise (also from a thread)
/startup                  call_later at import time (raises) and in @postfork
"""

import json
import sys
import threading
import time
from urllib.parse import parse_qs

import spindle

FIRED = {}  # tag -> what the callback saw


def where():
    """Where a callback runs: the core (-1: the loop, outside every request)
    and, when greenlet is in use, whether it is the main greenlet."""
    info = {"core_id": spindle.core_id()}
    if "greenlet" in sys.modules:
        info["main_greenlet"] = sys.modules["greenlet"].getcurrent().parent is None
    return info


def mark(tag, value=None):
    FIRED[tag] = dict(where(), value=value, at=time.monotonic())


# Importing the app runs in the master, which has no loop: this must raise.
try:
    spindle.call_later(0, mark, "import")
    IMPORT_ERROR = None
except RuntimeError as e:
    IMPORT_ERROR = str(e)


@spindle.postfork
def schedule_from_postfork():
    spindle.add_callback(mark, "postfork-soon", "from postfork")
    spindle.call_later(0.01, mark, "postfork-later", "from postfork")


def query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def reply(start_response, obj):
    body = json.dumps(obj, sort_keys=True).encode() + b"\n"
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def park_greenlet(schedule):
    """schedule(me.switch) arranges for the loop to switch back; then step
    out to the loop. Returns what the loop passed to me.switch()."""
    import greenlet

    me = greenlet.getcurrent()
    schedule(me.switch)
    value = me.parent.switch()
    return value, greenlet.getcurrent() is me


def park_suspended(schedule):
    """schedule(wake) arranges for the loop to call wake(value), which
    resume()s this request from spindle.suspend()."""
    core = spindle.core_id()
    box = {}

    def wake(value):
        box.update(where(), value=value)
        # From the loop, resume() runs the request up to its next park
        # before it returns.
        spindle.resume(core)

    schedule(wake)
    resumed = spindle.suspend(timeout=10)
    return box.get("value"), dict(box, resumed=resumed)


def switch(environ, start_response):
    seconds = float(query(environ).get("s", "0.2"))
    t0 = time.monotonic()
    core = spindle.core_id()
    value, same = park_greenlet(lambda fn: spindle.call_later(seconds, fn, "woken by the loop"))
    return reply(start_response, {"value": value, "same_greenlet": same, "core_id": core,
                                  "core_after": spindle.core_id(),
                                  "elapsed": time.monotonic() - t0})


def resume(environ, start_response):
    seconds = float(query(environ).get("s", "0.2"))
    t0 = time.monotonic()
    value, info = park_suspended(lambda fn: spindle.call_later(seconds, fn, "woken by the loop"))
    return reply(start_response, {"value": value, "callback": info,
                                  "elapsed": time.monotonic() - t0})


def soon(environ, start_response):
    via = query(environ).get("via", "resume")
    t0 = time.monotonic()
    state = {"returned": False}

    def schedule(fn):
        def run(value):
            state["ran_before_return"] = not state["returned"]
            state["delay"] = time.monotonic() - t0
            fn(value)
        spindle.add_callback(run, "soon")
        state["returned"] = True

    if via == "switch":
        value, same = park_greenlet(schedule)
        info = {"same_greenlet": same}
    else:
        value, info = park_suspended(schedule)
    return reply(start_response, {"value": value, "info": info,
                                  "ran_before_return": state.get("ran_before_return"),
                                  "delay": state.get("delay")})


def cancel(environ, start_response):
    q = query(environ)
    tag = q.get("tag", "")
    seconds = float(q.get("s", "0.1"))
    cancelled = spindle.call_later(seconds, mark, tag + "-cancelled")
    kept = spindle.call_later(seconds, mark, tag + "-kept")
    out = {"pending_before": cancelled.pending, "first_cancel": cancelled.cancel(),
           "second_cancel": cancelled.cancel(), "pending_after": cancelled.pending}
    spindle.sleep(3 * seconds)
    out.update(cancelled_ran=tag + "-cancelled" in FIRED, kept_ran=tag + "-kept" in FIRED,
               kept_pending=kept.pending, cancel_after_run=kept.cancel())
    return reply(start_response, out)


def raise_(environ, start_response):
    tag = query(environ).get("tag", "")

    def boom():
        FIRED[tag + "-boom"] = where()
        raise ValueError("callback failure " + tag)

    spindle.call_later(0, boom)
    spindle.add_callback(boom)
    spindle.call_later(0.01, mark, tag + "-after")
    return reply(start_response, {"scheduled": True})


def fired(environ, start_response):
    tag = query(environ).get("tag", "")
    return reply(start_response, {k: v for k, v in FIRED.items()
                                  if k == tag or k.startswith(tag + "-")})


def churn(environ, start_response):
    n = int(query(environ).get("n", "2000"))
    count = [0]
    arg = object()

    def cb(a):
        count[0] += 1

    base = (sys.getrefcount(cb), sys.getrefcount(arg))
    handles = [spindle.call_later(0.001, cb, arg) for _ in range(n)]
    cancelled = sum(h.cancel() for h in handles[::2])
    for _ in range(n):
        spindle.add_callback(cb, arg)
    del handles
    want = n - cancelled + n
    deadline = time.monotonic() + 10
    while count[0] < want and time.monotonic() < deadline:
        spindle.sleep(0.01)
    spindle.sleep(0.05)  # anything extra would run now
    return reply(start_response, {"calls": count[0], "want": want, "cancelled": cancelled,
                                  "refs_back": (sys.getrefcount(cb), sys.getrefcount(arg)) == base})


def errors(environ, start_response):
    out = {}

    def attempt(name, fn):
        try:
            fn()
            out[name] = None
        except Exception as e:  # noqa: B902 - reported to the test
            out[name] = [type(e).__name__, str(e)]

    attempt("negative", lambda: spindle.call_later(-1, mark, "x"))
    attempt("nan", lambda: spindle.call_later(float("nan"), mark, "x"))
    attempt("not_callable", lambda: spindle.call_later(0, 42))
    attempt("no_fn", lambda: spindle.add_callback())
    attempt("add_not_callable", lambda: spindle.add_callback("nope"))

    def in_thread():
        attempt("thread_call_later", lambda: spindle.call_later(0, mark, "x"))
        attempt("thread_add_callback", lambda: spindle.add_callback(mark, "x"))
    t = threading.Thread(target=in_thread)
    t.start()
    t.join(10)
    return reply(start_response, out)


def startup(environ, start_response):
    return reply(start_response, {"import_error": IMPORT_ERROR,
                                  "postfork": {k: FIRED.get(k) for k in
                                               ("postfork-soon", "postfork-later")}})


ROUTES = {"/switch": switch, "/resume": resume, "/soon": soon, "/cancel": cancel,
          "/raise": raise_, "/fired": fired, "/churn": churn, "/errors": errors,
          "/startup": startup}


def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", "10")])
        return [b"not found\n"]
    return route(environ, start_response)
