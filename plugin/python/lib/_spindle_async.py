"""The parts of the `spindle` module written in Python: connect() and wait().

spindle adds the names in __all__ to the spindle module at start-up, so apps
call spindle.connect() and spindle.wait(); the uwsgi module reuses
addresses() for uwsgi.async_connect(). Every wait here parks the calling
core through the spindle module's own primitives (wait_fd_write, suspend,
resume), so it works under every loop engine and suspend engine.
"""

import errno
import os
import socket
import time

import _spindle_loop
import spindle

__all__ = ["connect", "wait"]


def addresses(address):
    """[(family, sockaddr), ...] for an address as spindle writes them:
    "host:port", ":port" (127.0.0.1), "[v6]:port", a unix socket path
    ("@name": Linux abstract namespace), or a (host, port) tuple.

    A host name is resolved with getaddrinfo(), which blocks the worker:
    pass numeric addresses on hot paths."""
    if isinstance(address, tuple):
        if len(address) != 2:
            raise ValueError("address tuple must be (host, port): %r" % (address,))
        host, port = address
    else:
        if isinstance(address, bytes):
            address = address.decode()
        if not isinstance(address, str) or not address:
            raise ValueError("bad address: %r" % (address,))
        if ":" not in address or address.startswith(("/", ".", "@")):
            path = "\0" + address[1:] if address.startswith("@") else address
            return [(socket.AF_UNIX, path)]
        if address.startswith("["):
            host, sep, port = address[1:].partition("]:")
            if not sep:
                raise ValueError("bad address (expected [v6]:port): %r" % address)
        else:
            host, _, port = address.rpartition(":")
        try:
            port = int(port)
        except ValueError:
            raise ValueError("bad port in address %r" % address) from None
    if not 0 <= int(port) <= 65535:
        raise ValueError("port out of range in address %r" % (address,))
    infos = socket.getaddrinfo(host or "127.0.0.1", int(port), type=socket.SOCK_STREAM)
    return [(family, sockaddr) for family, _, _, _, sockaddr in infos]


def start_connect(family, sockaddr):
    """A non-blocking stream socket whose connect() to sockaddr has started
    (or already finished). Raises OSError if it failed at once."""
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setblocking(False)
        err = s.connect_ex(sockaddr)
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, os.strerror(err))
    except BaseException:
        s.close()
        raise
    return s


def connect(address, timeout=None):
    """connect(address, timeout=None) -> socket.socket

    Connects to address ("host:port", "[v6]:port", a unix socket path or a
    (host, port) tuple) and returns the connected socket, non-blocking. The
    request parks while the connection is made; other requests keep running.
    Raises OSError if it fails (ConnectionRefusedError, ...), TimeoutError
    if it takes longer than timeout seconds (None: no limit). Each address
    the host resolves to is tried in turn, within the one timeout."""
    if timeout is not None and not timeout >= 0:
        raise ValueError("timeout must be a non-negative number or None")
    deadline = None if timeout is None else time.monotonic() + timeout
    error = None
    for family, sockaddr in addresses(address):
        try:
            s = start_connect(family, sockaddr)
        except OSError as e:
            error = e
            continue
        try:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not spindle.wait_fd_write(s, left):
                raise TimeoutError("connecting to %s: no answer after %gs" % (address, timeout))
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                # OSError(errno, ...) is the matching subclass (ConnectionRefusedError...)
                raise OSError(err, "%s (connecting to %s)" % (os.strerror(err), address))
        except TimeoutError:
            s.close()
            raise
        except OSError as e:
            s.close()
            error = e
            continue
        except BaseException:
            s.close()
            raise
        return s
    if error is None:
        error = OSError("no address to connect to: %r" % (address,))
    raise error


def wait(awaitable, timeout=None):
    """wait(awaitable, timeout=None) -> its result

    Parks this request until a concurrent.futures.Future (from a
    ThreadPoolExecutor, say), an asyncio or Tornado future, a coroutine or
    another awaitable completes; returns its result or raises its exception.
    Only this request waits: the worker keeps serving the others, and the
    thread that finishes the work wakes this core through the worker's loop.
    After timeout seconds it cancels the work (where it can) and raises
    TimeoutError.

    Where it runs: a concurrent future runs where it was submitted. Under
    --tornado, coroutines and futures run on the worker's own IOLoop. Under
    the other loop engines a coroutine runs on an asyncio loop that spindle
    starts in a thread of its own (one per worker, on first use), and an
    asyncio future must belong to a loop that runs in some thread."""
    import asyncio
    import concurrent.futures

    if timeout is not None and not timeout >= 0:
        _discard(awaitable)
        raise ValueError("timeout must be a non-negative number or None")
    if spindle.core_id() < 0:
        _discard(awaitable)
        raise RuntimeError("spindle.wait() can only be called while serving a request")
    if isinstance(awaitable, concurrent.futures.Future):
        return _wait_threadsafe(awaitable, awaitable.add_done_callback, awaitable.cancel, timeout)
    # Under --tornado, the worker's loop: a request sees it as current,
    # never as running (see _spindle_loop).
    loop = _spindle_loop.worker_loop()
    if loop is not None:
        return _wait_on_worker_loop(loop, asyncio.ensure_future(awaitable, loop=loop), timeout)
    if asyncio.isfuture(awaitable):
        owner = awaitable.get_loop()
        if not owner.is_running():
            raise RuntimeError("spindle.wait: the future's asyncio loop is not running in any "
                               "thread, so nothing would ever complete it")

        def watch(callback):
            owner.call_soon_threadsafe(awaitable.add_done_callback, callback)

        def cancel():
            owner.call_soon_threadsafe(awaitable.cancel)

        return _wait_threadsafe(awaitable, watch, cancel, timeout)
    try:
        fut = asyncio.run_coroutine_threadsafe(_awaited(awaitable), _helper_loop())
    except BaseException:
        _discard(awaitable)
        raise
    return _wait_threadsafe(fut, fut.add_done_callback, fut.cancel, timeout)


def _wait_threadsafe(fut, watch, cancel, timeout):
    """Parks until fut is done, woken from whichever thread completes it."""
    if not fut.done():
        waker = spindle._waker()
        watch(waker)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not fut.done():
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not waker.park(left) and not fut.done():
                    raise TimeoutError("spindle.wait: not done after %gs" % timeout)
        except BaseException:
            cancel()
            raise
    return fut.result()


def _wait_on_worker_loop(loop, fut, timeout):
    """The worker's own asyncio loop (--tornado) completes fut: its done
    callback runs on this thread and resumes the core directly."""
    core = spindle.core_id()
    if not fut.done():
        def wake(_):
            spindle.resume(core)

        fut.add_done_callback(wake)
        deadline = None if timeout is None else loop.time() + timeout
        try:
            # resume() from someone else may wake this core early: park again.
            while not fut.done():
                left = None if deadline is None else max(0.0, deadline - loop.time())
                if not spindle.suspend(left) and not fut.done():
                    raise TimeoutError("spindle.wait: not done after %gs" % timeout)
        except BaseException:
            fut.remove_done_callback(wake)
            fut.cancel()
            raise
    return fut.result()


async def _awaited(awaitable):
    return await awaitable


_helper = None


def _helper_loop():
    """The worker's asyncio loop for spindle.wait() under loop engines that
    are not asyncio: a daemon thread, started on first use in this process
    (never in the master, so it is not lost in a fork)."""
    global _helper
    import asyncio
    import threading

    pid = os.getpid()
    if _helper is not None and _helper[0] == pid:
        return _helper[1]
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        loop.run_forever()

    threading.Thread(target=run, name="spindle-asyncio", daemon=True).start()
    started.wait()
    _helper = (pid, loop)
    return loop


def _discard(awaitable):
    """A coroutine that will never run: close it, so Python does not warn
    that it was never awaited (the caller gets the real error instead)."""
    import inspect
    if inspect.iscoroutine(awaitable):
        awaitable.close()
