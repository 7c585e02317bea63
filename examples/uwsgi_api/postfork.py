"""Post-fork hooks the uWSGI way, and what a worker knows about itself.

@postfork functions run in each worker after fork, in the order they were
registered, then uwsgi.post_fork_hook. GET / answers this worker's record.
"""

import json
import os

import uwsgi
from uwsgidecorators import postfork

RAN = []  # [which hook, pid] in the order they ran, in this process


def _ran(what):
    RAN.append([what, os.getpid()])
    uwsgi.log("ran %s in worker %d" % (what, uwsgi.worker_id()))


@postfork
def first():
    _ran("postfork first")


@postfork
def second():
    _ran("postfork second")


@postfork(1)
def only_worker_one():
    _ran("postfork worker 1")


def hook():
    _ran("post_fork_hook")
    RAN[-1].append(uwsgi.worker_id())


uwsgi.post_fork_hook = hook
LOADED_IN = {"pid": os.getpid(), "worker_id": uwsgi.worker_id()}


def application(environ, start_response):
    body = json.dumps({
        "ran": RAN,
        "pid": os.getpid(),
        "worker_id": uwsgi.worker_id(),
        "mule_id": uwsgi.mule_id(),
        "masterpid": uwsgi.masterpid(),
        "numproc": uwsgi.numproc,
        "version": uwsgi.version.decode(),
        "opt": uwsgi.opt,
        "loaded_in": LOADED_IN,
        "has_cache_get": hasattr(uwsgi, "cache_get"),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
