"""Greenlet-style request code on spindle's greenlet cores.

Serve it with one worker: the requests that meet keep their state in module
globals.

    spindle --http-socket 127.0.0.1:9090 --greenlet --async 8 --processes 1 \\
            --wsgi-file examples/greenlet/park_resume.py

/park?key=K       remembers greenlet.getcurrent() and spindle.core_id() under K,
                  parks with spindle.suspend() until another request resumes it,
                  then answers whether it came back in the same greenlet
/unpark?key=K     spindle.resume()s the request parked under K, from inside this
                  request; {"found": false} when nothing is parked there yet
/nested?s=0.2     runs a child greenlet that spindle.sleep()s; the child parks
                  and resumes on its own, then returns its result to the request
/loop_park?s=0.2  (--tornado N only) the uWSGI greenlet pattern: a loop callback
                  is told to call me.switch(), then me.parent.switch() steps
                  back to the loop until it does (through the IOLoop itself;
                  loop_switch.py does it on any loop with spindle.call_later)
"""

import json
from urllib.parse import parse_qs

import greenlet
import spindle

WAITING = {}  # key -> {"greenlet": g, "core": core id}


def query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def reply(start_response, obj):
    body = json.dumps(obj, sort_keys=True).encode() + b"\n"
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def park(environ, start_response):
    key = query(environ).get("key", "")
    me = greenlet.getcurrent()
    core = spindle.core_id()
    WAITING[key] = {"greenlet": me, "core": core}
    try:
        spindle.suspend()
    finally:
        WAITING.pop(key, None)
    return reply(start_response, {"resumed": True, "same_greenlet": greenlet.getcurrent() is me,
                                  "core_id": spindle.core_id(), "parked_core": core})


def unpark(environ, start_response):
    key = query(environ).get("key", "")
    entry = WAITING.get(key)
    if entry is None:
        return reply(start_response, {"found": False, "resumed": False})
    woke = spindle.resume(entry["core"])
    return reply(start_response, {"found": True, "resumed": woke,
                                  "waker_core": spindle.core_id(),
                                  "waker_is_other_greenlet": greenlet.getcurrent() is not
                                  entry["greenlet"]})


def nested(environ, start_response):
    seconds = float(query(environ).get("s", "0.2"))
    outer = greenlet.getcurrent()

    def child_run(pause):
        core = spindle.core_id()
        spindle.sleep(pause)
        return {"child_core": core, "child_core_after": spindle.core_id(),
                "child_parent_is_request": greenlet.getcurrent().parent is outer}

    child = greenlet.greenlet(child_run)
    result = child.switch(seconds)
    result.update(core_id=spindle.core_id(), same_outer=greenlet.getcurrent() is outer,
                  child_dead=child.dead)
    return reply(start_response, result)


def loop_park(environ, start_response):
    from tornado.ioloop import IOLoop

    seconds = float(query(environ).get("s", "0.2"))
    me = greenlet.getcurrent()
    IOLoop.current().call_later(seconds, me.switch, "woken by the loop")
    value = me.parent.switch()
    return reply(start_response, {"value": value, "same_greenlet": greenlet.getcurrent() is me,
                                  "core_id": spindle.core_id()})


ROUTES = {"/park": park, "/unpark": unpark, "/nested": nested, "/loop_park": loop_park}


def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", "10")])
        return [b"not found\n"]
    return route(environ, start_response)
