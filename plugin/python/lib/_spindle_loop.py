"""The worker's asyncio loop under --tornado, run on spindle's own loop.

The loop is asyncio's SelectorEventLoop; only its selector is spindle's: the
fds the app registers (Tornado's add_handler, asyncio's add_reader, the
loop's wake-up pipe) become watchers of the worker's loop, and select() runs
that loop -- the server's own I/O, timers and cores included, all in C++ --
until an app fd is ready, the timeout passes, or a callback gave asyncio
something to do. Python runs once per batch, never once per server event.

A loop the app captured while it was imported in the master
(IOLoop.instance(), IOLoop.current(), asyncio.get_event_loop()) is that
same object in every worker: adopt() gives it a fresh selector and wake-up
pipe before anything else runs, so no worker uses the master's epoll fd or
pipe, and what the app scheduled at import time (callbacks, timers,
handlers) runs in every worker.

Inside a request nothing sees the loop as *running* (so Django's async-safety
check passes), while asyncio.get_event_loop() and IOLoop.current() still
answer the worker's loop: each core has a thread state of its own (or, under
--greenlet, the running loop is hidden while a core runs), and the policy
below answers the worker's loop on the worker's thread.
"""

import asyncio
import selectors
import signal
import threading
from asyncio import selector_events

__all__ = ["adopt", "worker_loop"]

_WORKER = {"loop": None}


class SpindleSelector(selectors._BaseSelectorImpl):
    """A selector whose fds are watchers of spindle's loop (the poller)."""

    def __init__(self, poller):
        super().__init__()
        self._poller = poller

    def register(self, fileobj, events, data=None):
        key = super().register(fileobj, events, data)
        self._poller.watch(key.fd, events)  # EVENT_READ/WRITE are spindle's bits
        return key

    def unregister(self, fileobj):
        key = super().unregister(fileobj)
        self._poller.watch(key.fd, 0)
        return key

    def modify(self, fileobj, events, data=None):
        try:
            key = self._fd_to_key[self._fileobj_lookup(fileobj)]
        except KeyError:
            raise KeyError("%r is not registered" % (fileobj,)) from None
        if events != key.events:
            if not events or events & ~(selectors.EVENT_READ | selectors.EVENT_WRITE):
                raise ValueError("Invalid events: %r" % (events,))
            self._poller.watch(key.fd, events)
        key = key._replace(events=events, data=data)
        self._fd_to_key[key.fd] = key
        return key

    def select(self, timeout=None):
        get = self._fd_to_key.get
        ready = []
        for fd, events in self._poller.poll(timeout):
            key = get(fd)
            if key is not None and events & key.events:
                ready.append((key, events & key.events))
        return ready

    def close(self):
        for fd in list(self._fd_to_key):
            self._poller.watch(fd, 0)
        super().close()


class WorkerPolicy(asyncio.DefaultEventLoopPolicy):
    """get_event_loop() on the worker's own thread answers the worker's
    loop, from every core too (a core's thread state has its own
    threading.local, so the default policy would make it a new loop)."""

    def __init__(self, loop):
        super().__init__()
        self.worker_loop = loop
        self._ident = threading.get_ident()

    def get_event_loop(self):
        if threading.get_ident() == self._ident and self._local._loop is None:
            return self.worker_loop
        return super().get_event_loop()


def _captured_loop():
    """The loop the app made while it was imported, if any."""
    local = getattr(asyncio.get_event_loop_policy(), "_local", None)
    return getattr(local, "_loop", None)


def _transplant(loop, poller):
    """Moves a loop made in the master onto this worker: a new selector,
    holding what the app registered, and a new wake-up pipe. The master's
    epoll fd and pipe are closed here without being touched (no epoll_ctl:
    the epoll set is shared with the master and the other workers)."""
    old = loop._selector
    pipe_fd = loop._ssock.fileno() if loop._ssock is not None else -1
    keys = [k for k in old.get_map().values() if k.fd != pipe_fd]
    new = SpindleSelector(poller)
    loop._selector = new
    old.close()
    for key in keys:
        new.register(key.fileobj, key.events, key.data)
    if loop._ssock is not None:
        loop._close_self_pipe()  # the new selector never had it: just closes
    loop._make_self_pipe()
    if getattr(loop, "_signal_handlers", None):
        signal.set_wakeup_fd(loop._csock.fileno())


def adopt(poller):
    """Makes the worker's loop (the app's own, if it made one at import)
    run on `poller`, installs the policy; returns the loop."""
    loop = _captured_loop()
    if (isinstance(loop, selector_events.BaseSelectorEventLoop) and not loop.is_closed()
            and not loop.is_running()):
        _transplant(loop, poller)
    else:
        loop = asyncio.SelectorEventLoop(SpindleSelector(poller))
    poller.attach(loop)
    asyncio.set_event_loop_policy(WorkerPolicy(loop))
    asyncio.set_event_loop(loop)
    _WORKER["loop"] = loop
    return loop


def worker_loop():
    """The worker's asyncio loop under --tornado, else None."""
    return _WORKER["loop"]
