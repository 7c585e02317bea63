"""uWSGI's `uwsgidecorators`, the part that needs no spooler, mule, signal or
timer: @postfork.

    from uwsgidecorators import postfork

    @postfork
    def reconnect():
        db.connect()

    @postfork(1)          # only in worker 1
    def warm_cache():
        ...

The functions run in every new worker after fork, before it serves a
request, in the order they were registered (spindle's own @spindle.postfork
list, shared), then uwsgi.post_fork_hook if the app set one. The decorated
function is returned unchanged.
"""

import functools

import spindle
import uwsgi

# uWSGI's module has no __all__, so `from uwsgidecorators import *` also
# gives the app `uwsgi` (its Tornado docs rely on that).
__all__ = ["postfork", "uwsgi"]


def postfork(f):
    if callable(f):
        return spindle.postfork(f)
    wid = int(f)

    def register(fn):
        @functools.wraps(fn)
        def in_that_worker():
            if wid <= 0 or spindle.worker_id() == wid:
                fn()

        spindle.postfork(in_that_worker)
        return fn

    return register


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError("uwsgidecorators.%s is not provided by spindle (no spooler, mules, "
                         "signals or timers; @postfork is)" % name)
