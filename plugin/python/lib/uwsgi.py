"""uWSGI's `uwsgi` module, as apps written for uWSGI's async mode use it.

Such apps run unmodified: the names, argument orders and return values are
uWSGI's (2.0). What differs, and why:

- A wait parks the request at once. In uWSGI, async_sleep() and
  wait_fd_read()/wait_fd_write() only register the wait, and the request
  stops at the next uwsgi.suspend() or `yield ""`. Here that following
  suspend() returns at once and the empty chunk is skipped, so code written
  either way behaves the same.
- async_sleep() keeps fractions of a second (uWSGI rounds down to whole
  seconds, so there async_sleep(0.5) does not sleep at all), and so do the
  timeouts of wait_fd_read()/wait_fd_write().
- masterpid() is always the master's pid: spindle always has a master.
- post_fork_hook runs after the @uwsgidecorators.postfork functions rather
  than replacing them.

Only this subset exists (no caches, spooler, mules, signals, RPC, locks):
anything else raises AttributeError naming what is missing, so
`hasattr(uwsgi, "cache_get")` is False.
"""

import errno
import os
import socket

import spindle
from _spindle_async import addresses as _addresses

version = b"2.0-compatible spindle"  # bytes, as uWSGI's is under Python 3
version_info = (2, 0, 0, 0, "spindle")
numproc = spindle.processes  # workers
cores = spindle.cores  # async cores per worker
opt = {}  # uWSGI's options: spindle keeps its own, none are shown here


def worker_id():
    """This worker's number, 1..numproc (0 in the master)."""
    return spindle.worker_id()


def set_logvar(key, value):
    """Sets the request's log variable `key`: `--log-format` prints it as %(key)."""
    spindle._set_logvar(str(key), str(value))


def get_logvar(key):
    """The request's log variable `key` (set_logvar), or None."""
    return spindle._get_logvar(str(key))


def mule_id():
    """0: spindle has no mules, so the code is never running in one."""
    return 0


def masterpid():
    return spindle.masterpid()


def log(message):
    """Writes message to the server log."""
    spindle.log(message)
    return True


# --- async mode ----------------------------------------------------------

class _RequestState:
    __slots__ = ("request", "waited", "ready")

    def __init__(self, request):
        self.request = request  # spindle._request_serial() of its request
        self.waited = False  # a wait just happened: the next suspend() is that wait
        self.ready = -1  # what ready_fd() returns


_states = {}  # core id -> _RequestState of the request it serves (one at a time)


def _state():
    """The state of the running request: a fresh one when the core has moved
    on to another request, so nothing of the last one leaks into it."""
    core = spindle.core_id()
    request = spindle._request_serial()
    st = _states.get(core)
    if st is None or st.request != request:
        st = _states[core] = _RequestState(request)
    return st


def async_sleep(seconds):
    """Parks this request for `seconds` (fractions count); returns "" so
    that `yield uwsgi.async_sleep(1)` works as it does under uWSGI."""
    seconds = float(seconds)
    st = _state()
    if seconds > 0:
        spindle.sleep(seconds)
        st.ready = -1
        st.waited = True
    return ""


def _fd_of(fd):
    """An int fd, or an object with fileno() (uWSGI takes ints only)."""
    if not isinstance(fd, int):
        fileno = getattr(fd, "fileno", None)
        if fileno is None:
            raise TypeError("fd must be an int or have a fileno() method, not %s"
                            % type(fd).__name__)
        fd = fileno()
    if fd < 0:
        raise OSError(errno.EBADF, "unable to add fd %d to the event queue" % fd)
    return fd


def _wait_fd(wait, fd, timeout):
    fd = _fd_of(fd)
    st = _state()
    ready = wait(fd, timeout if timeout and timeout > 0 else None)
    st.ready = fd if ready else -1
    st.waited = True
    return ""


def wait_fd_read(fd, timeout=0):
    """Parks this request until fd is readable or `timeout` seconds passed
    (0: no limit); then ready_fd() tells which. Returns ""."""
    return _wait_fd(spindle.wait_fd_read, fd, timeout)


def wait_fd_write(fd, timeout=0):
    """Parks this request until fd is writable or `timeout` seconds passed
    (0: no limit); then ready_fd() tells which. Returns ""."""
    return _wait_fd(spindle.wait_fd_write, fd, timeout)


def ready_fd():
    """The fd that ended the last wait of this request, -1 if it timed out."""
    return _state().ready


def suspend():
    """Gives the other requests a turn. Right after a wait it returns at
    once: the wait already parked this request (see the module's notes)."""
    st = _state()
    if st.waited:
        st.waited = False
    else:
        spindle.yield_now()
    return True


def async_connect(address):
    """Starts connecting to "host:port" or a unix socket path without
    waiting; returns the new non-blocking socket's fd (-1 if it failed at
    once). Wait for it with wait_fd_write() and check is_connected()."""
    try:
        family, sockaddr = _addresses(address)[0]
        s = socket.socket(family, socket.SOCK_STREAM)
    except (OSError, ValueError, IndexError):
        return -1
    s.setblocking(False)
    err = s.connect_ex(sockaddr)
    if err not in (0, errno.EINPROGRESS):
        s.close()
        return -1
    return s.detach()


def is_connected(fd):
    """True if the socket fd is connected (no pending error, a peer)."""
    try:
        s = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)  # a dup: fd stays ours
    except (OSError, ValueError, TypeError):
        return False
    with s:
        try:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                return False
            s.getpeername()
        except OSError:
            return False
    return True


def close(fd):
    os.close(fd)


def recv(fd, max_size=4096):
    """Up to max_size (at most 4096) bytes read from fd, None at EOF or on
    error. Does not wait: use wait_fd_read() first."""
    try:
        data = os.read(fd, max(0, min(int(max_size), 4096)))
    except OSError:
        return None
    return data or None


# WebSockets on the request's connection (RFC 6455); see README "WebSockets".
websocket_handshake = spindle._websocket_handshake
websocket_recv = spindle._websocket_recv
websocket_recv_nb = spindle._websocket_recv_nb
websocket_send = spindle._websocket_send
websocket_send_binary = spindle._websocket_send_binary


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError("uwsgi.%s is not provided by spindle (it implements uWSGI's async and "
                         "websocket API, worker_id, masterpid, log and post_fork_hook)" % name)
