"""A native tornado.web.Application and a WSGI app in the same workers, on
the same IOLoop.

    TORNADO_BASE_PORT=8000 spindle --http-socket 127.0.0.1:9090 --processes 2 --tornado 10 \\
        --wsgi-file examples/tornado/web_app.py
    curl 127.0.0.1:8001/        # worker 1's Tornado app
    curl 127.0.0.1:8002/        # worker 2's
    curl 127.0.0.1:9090/ids     # WSGI, on whichever worker accepts

A @spindle.postfork hook binds the Tornado app in every worker, to port
TORNADO_BASE_PORT + worker_id() on 127.0.0.1. With TORNADO_BASE_PORT unset
or 0 each worker binds a free port instead. Either way the worker prints

    tornado app of worker N listening on 127.0.0.1:PORT

to stderr (the server log). Tornado's handlers and the WSGI cores are
served by one IOLoop, so a WSGI request can even fetch its own worker's
Tornado app and wait for it (/via_tornado).

Tornado:  /            {"kind": "tornado", "worker_id", "pid"}
          /sleep?s=S   the same after `await asyncio.sleep(S)`
WSGI:     /ids         {"kind": "wsgi", "worker_id", "pid", "tornado_port"}
          /via_tornado fetches this worker's Tornado "/" with AsyncHTTPClient
                       and spindle.wait; answers {"wsgi": ..., "tornado": ...}
"""

import asyncio
import json
import os
import sys

import spindle
import tornado.httpserver
import tornado.netutil
import tornado.web
from tornado.httpclient import AsyncHTTPClient

AsyncHTTPClient.configure(None, max_clients=1000)

STATE = {"port": None, "server": None}


def who(kind):
    return {"kind": kind, "worker_id": spindle.worker_id(), "pid": os.getpid()}


class Hello(tornado.web.RequestHandler):
    def get(self):
        self.write(who("tornado"))


class Sleep(tornado.web.RequestHandler):
    async def get(self):
        await asyncio.sleep(float(self.get_argument("s", "0.1")))
        self.write(who("tornado"))


@spindle.postfork
def listen():
    base = int(os.environ.get("TORNADO_BASE_PORT") or 0)
    port = base + spindle.worker_id() if base else 0
    app = tornado.web.Application([(r"/", Hello), (r"/sleep", Sleep)])
    sockets = tornado.netutil.bind_sockets(port, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    STATE["port"] = sockets[0].getsockname()[1]
    STATE["server"] = server
    print("tornado app of worker %d listening on 127.0.0.1:%d"
          % (spindle.worker_id(), STATE["port"]), file=sys.stderr, flush=True)


def reply(start_response, obj):
    body = json.dumps(obj, sort_keys=True).encode() + b"\n"
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def ids(environ, start_response):
    return reply(start_response, dict(who("wsgi"), tornado_port=STATE["port"]))


def via_tornado(environ, start_response):
    url = "http://127.0.0.1:%d/" % STATE["port"]
    resp = spindle.wait(AsyncHTTPClient().fetch(url))
    return reply(start_response, {"wsgi": who("wsgi"), "tornado": json.loads(resp.body)})


ROUTES = {"/ids": ids, "/via_tornado": via_tornado}


def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", "10")])
        return [b"not found\n"]
    return route(environ, start_response)
