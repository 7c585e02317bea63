"""Benchmark app for uWSGI --async N --greenlet: a sleep made of a timerfd.

uwsgi.async_sleep() works in whole seconds (a 0.1 s sleep does not sleep), so
the request arms a timerfd for 0.1 s (or ?s=SECONDS), asks uWSGI to wake it
when the fd is readable, and yields "" to let the suspend engine park it.
Python 3.11 has no os.timerfd_create, hence ctypes.
"""

import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _parked  # noqa: E402
import uwsgi  # noqa: E402

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", Timespec), ("it_value", Timespec)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(Itimerspec),
                                  ctypes.c_void_p]

BODY = b"slept\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def timer_fd(seconds):
    fd = _libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "timerfd_create")
    spec = Itimerspec()
    spec.it_value.tv_sec = int(seconds)
    spec.it_value.tv_nsec = max(1, int((seconds - int(seconds)) * 1e9))
    if _libc.timerfd_settime(fd, 0, ctypes.byref(spec), None) < 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise OSError(err, "timerfd_settime")
    return fd


def application(environ, start_response):
    seconds = _parked.seconds(environ)
    fd = timer_fd(seconds)
    _parked.parked(1)
    try:
        uwsgi.wait_fd_read(fd, int(seconds) + 5)
        yield b""
    finally:
        _parked.parked(-1)
        os.close(fd)
    start_response("200 OK", HEADERS)
    yield BODY
