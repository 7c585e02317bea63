"""A uWSGI app, unmodified: per-worker set-up with @uwsgidecorators.postfork.

    spindle --http-socket :9090 --processes 2 --wsgi-file examples/async/uwsgi_postfork.py

Answers JSON: uwsgi.worker_id(), the pid, and the pids the hook ran in.
"""

import json
import os

import uwsgi
from uwsgidecorators import postfork

RAN_IN = []


@postfork
def reconnect():
    RAN_IN.append(os.getpid())


def application(env, start_response):
    body = json.dumps({"worker_id": uwsgi.worker_id(), "pid": os.getpid(),
                       "postfork": RAN_IN}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
