"""Requests interleaved on the async cores of one worker keep their own
interpreter state: exception state, contextvars, threading.local, recursion
depth; C code that takes the GIL with PyGILState_Ensure works after a park;
a C stack overflow kills only the worker it happened in."""

import json
import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import (ConnectionClosed, RawConn, build_request, example, http_request,
                     sanitized, sanitizer_reports, server_args, wait_until)

CORES = 8


def greenlet_cores():
    """True when SPINDLE_PAIRING or SPINDLE_EXTRA_ARGS runs the suite on the
    greenlet engine."""
    args = server_args(["--async", str(CORES)], True)
    return "--greenlet" in args or "--suspend=greenlet" in args or any(
        a == "--suspend" and b == "greenlet" for a, b in zip(args, args[1:]))


# threading.local lives in the thread state's dict. Fiber cores each get a
# thread state of their own; greenlet cores share the worker's one thread
# state (greenlet switches frames, not thread states, as in uWSGI's greenlet
# mode), so there threading.local is per worker, not per request.
per_core_thread_state = pytest.mark.skipif(
    greenlet_cores(), reason="threading.local is shared by greenlet cores (one thread state "
    "per worker, as in uWSGI's greenlet mode); see plugin/greenlet/README.md")


def get(srv, path, timeout=30.0):
    return http_request(srv.http_addr, "GET", path, timeout=timeout)


def get_json(srv, path, timeout=30.0):
    r = get(srv, path, timeout)
    assert r.status == 200, "GET %s: %r %r" % (path, r, r.body[:500])
    return json.loads(r.body)


def tags(n=2):
    base = uuid.uuid4().hex[:8]
    return ["%s-%d" % (base, i) for i in range(n)]


def start(srv, path):
    """GET path in a thread; returns a function that waits for its JSON."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(get_json, srv, path)
    pool.shutdown(wait=False)
    return lambda: future.result(timeout=60)


def interleave(srv, first, second, first_tag):
    """Start `first` (which parks until the second request has finished),
    wait until it is parked, run `second` to the end, then collect `first`."""
    wait_first = start(srv, first)
    wait_until(lambda: get_json(srv, "/parked?tag=%s" % first_tag)["parked"], 15,
               what="%s to park" % first)
    b = get_json(srv, second)
    a = wait_first()
    assert a["waited"] is True, "the first request never saw the second finish: %s" % a
    return a, b


@pytest.fixture
def iso(spindle):
    return spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("async/isolation.py"),
                   "--processes", "1", "--async", str(CORES))


# ---------------------------------------------------------------------------
# Exception state


def test_exc_info_survives_a_park_while_another_request_raises(iso):
    a_tag, b_tag = tags()
    a, b = interleave(iso, "/exc?tag=%s&kind=value&until=%s" % (a_tag, b_tag),
                      "/exc?tag=%s&kind=key&s=0.05" % b_tag, a_tag)
    assert a["before"] == ["ValueError", a_tag]
    assert a["after"] == ["ValueError", a_tag], "exc_info after the park: %s" % a
    assert a["inner_context"] == ["ValueError", a_tag], "implicit chaining after the park: %s" % a
    assert a["after_inner"] == ["ValueError", a_tag]
    assert a["outside"] is None, "the exception outlived its except block: %s" % a
    assert b["before"] == b["after"] == ["KeyError", b_tag], b
    assert b["inner_context"] == ["KeyError", b_tag]
    assert b["outside"] is None


@pytest.mark.parametrize("endpoint", ["exc", "ctx",
                                      pytest.param("tlocal", marks=per_core_thread_state)])
def test_many_interleaved_requests_keep_their_own_state(iso, endpoint):
    names = tags(24)
    kinds = ["value", "key", "runtime"]

    def one(i):
        # different park lengths so the requests wake in a different order
        # than they parked
        path = "/%s?tag=%s&kind=%s&s=%.2f" % (endpoint, names[i], kinds[i % 3],
                                              0.05 + (i % 5) * 0.07)
        return get_json(iso, path)
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        results = list(pool.map(one, range(len(names))))
    for i, r in enumerate(results):
        assert r["tag"] == names[i]
        if endpoint == "exc":
            names_of = {"value": "ValueError", "key": "KeyError", "runtime": "RuntimeError"}
            want = [names_of[kinds[i % 3]], names[i]]
            assert r["before"] == r["after"] == r["inner_context"] == want, r
            assert r["outside"] is None, r
        else:
            assert r["after"] == names[i], "request %d ended with another's value: %s" % (i, r)


# ---------------------------------------------------------------------------
# contextvars and threading.local


def test_contextvar_set_in_one_request_is_invisible_to_another(iso):
    a_tag, b_tag = tags()
    a, b = interleave(iso, "/ctx?tag=%s&until=%s" % (a_tag, b_tag), "/ctx?tag=%s&s=0.05" % b_tag,
                      a_tag)
    assert b["before"] != a_tag, "the second request saw the first one's contextvar: %s" % b
    assert b["after"] == b["in_copy"] == b_tag
    assert a["after"] == a_tag, "the first request's contextvar changed across the park: %s" % a
    assert a["in_copy"] == a_tag


@per_core_thread_state
def test_threading_local_is_per_request(iso):
    a_tag, b_tag = tags()
    a, b = interleave(iso, "/tlocal?tag=%s&until=%s" % (a_tag, b_tag),
                      "/tlocal?tag=%s&s=0.05" % b_tag, a_tag)
    assert b["before"] != a_tag, "the second request saw the first one's threading.local: %s" % b
    assert b["after"] == b_tag
    assert a["after"] == a_tag, "threading.local changed across the park: %s" % a


# ---------------------------------------------------------------------------
# Recursion


def test_deep_recursion_is_a_500_and_the_worker_lives(iso):
    pid = get_json(iso, "/pid")["pid"]
    baseline = get_json(iso, "/maxdepth")
    r = get(iso, "/recurse?depth=10000")
    assert r.status == 500, r
    assert b"Traceback" not in r.body and b"RecursionError" not in r.body, r.body[:300]
    iso.wait_for_log(r"RecursionError")
    assert get_json(iso, "/pid")["pid"] == pid, "the worker was replaced"
    assert iso.worker_pids() == {1: pid}
    # the core that hit the limit is usable again, with its full depth
    for _ in range(CORES + 1):
        assert get_json(iso, "/maxdepth") == baseline
    assert get_json(iso, "/recurse?depth=100")["reached"] == 100


def test_recursion_depth_is_per_request(iso):
    baseline = get_json(iso, "/maxdepth")["depth"]
    assert baseline > 600, baseline
    a_tag, b_tag = tags()
    # A parks 600 frames deep; B, on another core meanwhile, still gets the
    # whole recursion limit to itself.
    a, b = interleave(iso, "/deep?depth=600&tag=%s&until=%s" % (a_tag, b_tag),
                      "/maxdepth?tag=%s" % b_tag, a_tag)
    assert abs(b["depth"] - baseline) <= 2, (
        "depth %d beside a request parked 600 deep (alone: %d)" % (b["depth"], baseline))
    assert a["reached"] == 600
    assert a["headroom_before"] == a["headroom_after"], a
    assert a["headroom_before"] <= baseline - 550, a


def test_recursion_error_beside_a_request_parked_deep(iso):
    a_tag, b_tag = tags()
    wait_a = start(iso, "/deep?depth=800&tag=%s&until=%s" % (a_tag, b_tag))
    wait_until(lambda: get_json(iso, "/parked?tag=%s" % a_tag)["parked"], 15, what="A to park")
    r = get(iso, "/recurse?depth=10000&tag=%s" % b_tag)
    assert r.status == 500
    a = wait_a()
    assert a["waited"] is True and a["reached"] == 800
    assert a["headroom_before"] == a["headroom_after"], a


# ---------------------------------------------------------------------------
# C code in parked requests: PyGILState_Ensure, C stack overflow


@pytest.fixture(scope="module")
def ext_dir(tmp_path_factory):
    """examples/async/nativeext.c built for the system Python."""
    out = tmp_path_factory.mktemp("nativeext")
    config = "/usr/bin/python3-config"
    if not os.access(config, os.X_OK):
        pytest.skip("no %s (python3-dev)" % config)
    includes = subprocess.run([config, "--includes"], capture_output=True, text=True,
                              check=True).stdout.split()
    suffix = subprocess.run([config, "--extension-suffix"], capture_output=True, text=True,
                            check=True).stdout.strip()
    cmd = ["gcc", "-shared", "-fPIC", "-O0", "-Wall"] + includes + [
        example("async/nativeext.c"), "-o", str(out / ("nativeext" + suffix))]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        pytest.skip("no gcc")
    assert p.returncode == 0, "building nativeext failed:\n%s\n%s" % (" ".join(cmd), p.stderr)
    return out


@pytest.fixture
def native(spindle, ext_dir):
    return spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("async/native.py"),
                   "--pythonpath", str(ext_dir), "--processes", "1", "--async", str(CORES))


def test_ctypes_callback_after_a_park(native):
    j = get_json(native, "/qsort?n=500&s=0.05")
    assert j["sorted"] is True, j
    assert j["compares"] >= 499
    assert j["callback_cores"] == [j["core_id"]]


def test_ctypes_callbacks_that_park_interleave(native):
    def one(i):
        return get_json(native, "/qsort?n=300&s=0.01&park_every=40")
    with ThreadPoolExecutor(max_workers=CORES) as pool:
        results = list(pool.map(one, range(CORES)))
    for j in results:
        assert j["sorted"] is True, j
        assert j["parks"] > 0
        assert j["callback_cores"] == [j["core_id"]], "a callback ran on another core: %s" % j


@pytest.mark.parametrize("mode", ["ensured", "released"])
def test_c_extension_pygilstate_in_parked_requests(native, mode):
    def one(i):
        return get_json(native, "/ext?mode=%s&park=1&s=0.%d" % (mode, 2 + i % 3))
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(one, range(6)))
    for j in results:
        assert j["gilstate_before"] == [True, True], j
        assert j["gilstate_after_park"] == [True, True], (
            "after a park PyGILState does not point at this core's thread state: %s" % j)
        assert j["gilstate_end"] == [True, True], j
        for call in ("first", "second"):
            assert j[call]["core_id"] == j["core_id"], j
            assert j[call]["gilstate"] == [True, True], j


def test_c_stack_overflow_kills_the_worker_which_is_respawned(native):
    srv = native
    srv.allow_crash_lines = True  # a segfault is what this test asks for
    old = get_json(srv, "/pid")["pid"]
    with RawConn(srv.http_addr, timeout=30) as c:
        c.send(build_request("GET", "/overflow", extra=[("Connection", "close")]))
        try:
            r = c.read_response(timeout=30)
        except ConnectionClosed:
            r = None
    assert r is None or r.status >= 500, "the overflow answered %r" % r
    if sanitized():
        # AddressSanitizer catches the fault on the guard page itself: it
        # reports the overflow and the worker exits with status 1.
        srv.wait_for_log(r"worker 1 \(pid %d\) exited with status 1; respawning" % old,
                         timeout=20)
        reports = sanitizer_reports({old})  # or, without a log_path, in the log
        texts = list(reports.values()) or [srv.log_text()]
        assert any("stack-overflow" in text for text in texts), texts
        for path in reports:
            os.unlink(path)  # expected: it must not fail the run
    else:
        srv.wait_for_log(r"worker 1 \(pid %d\) killed by signal 11 \(SIGSEGV\); respawning" % old,
                         timeout=20)
    wait_until(lambda: srv.worker_pids().get(1, old) != old, 20, what="a new worker")
    new = get_json(srv, "/pid")["pid"]
    assert new != old and new == srv.worker_pids()[1]
    j = get_json(srv, "/ext?mode=ensured&park=1")
    assert j["second"]["gilstate"] == [True, True]
    assert srv.alive(), "the master died"
