"""A uWSGI app, unmodified: per-worker set-up through uwsgi.post_fork_hook.

    spindle --http-socket :9090 --processes 2 --wsgi-file examples/async/uwsgi_post_fork_hook.py

Answers JSON: uwsgi.worker_id(), the pid, and the pids the hook ran in.
"""

import json
import os

import uwsgi

RAN_IN = []


def after_fork():
    RAN_IN.append(os.getpid())


uwsgi.post_fork_hook = after_fork


def application(env, start_response):
    body = json.dumps({"worker_id": uwsgi.worker_id(), "pid": os.getpid(),
                       "postfork": RAN_IN}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
