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

    Parks this request until a Tornado or asyncio future, a coroutine or a
    concurrent.futures.Future completes; returns its result or raises its
    exception. After timeout seconds it cancels the future and raises
    TimeoutError. Needs the worker's asyncio loop (--tornado N)."""
    import asyncio
    import concurrent.futures

    if timeout is not None and not timeout >= 0:
        raise ValueError("timeout must be a non-negative number or None")
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _discard(awaitable)
        raise RuntimeError("spindle.wait needs an asyncio loop: run with --tornado N") from None
    core = spindle.core_id()
    if core < 0:
        _discard(awaitable)
        raise RuntimeError("spindle.wait() can only be called while serving a request")
    if isinstance(awaitable, concurrent.futures.Future):
        fut = asyncio.wrap_future(awaitable, loop=loop)
    else:
        fut = asyncio.ensure_future(awaitable, loop=loop)
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


def _discard(awaitable):
    """A coroutine that will never run: close it, so Python does not warn
    that it was never awaited (the caller gets the real error instead)."""
    import inspect
    if inspect.iscoroutine(awaitable):
        awaitable.close()
