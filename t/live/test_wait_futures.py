"""spindle.wait() under every loop engine and suspend engine: a
ThreadPoolExecutor future, a coroutine and an asyncio future of a loop in
another thread each park only the calling core, and the thread that
completes them wakes it through the worker's loop (regression: under the
default engine a request waiting on a pool future held the whole worker,
and spindle.wait refused to run without --tornado)."""
import threading
import time

import pytest
import requests

from harness import example, pairing_args, pairing_names

# Every pairing, and the default one with real threads (--threads 2).
THREADS = "ev-fibers-threads2"


def engine_args(name, cores):
    if name == THREADS:
        return ["--async", str(cores // 2), "--threads", "2"]
    return pairing_args(name, cores)


@pytest.fixture(scope="module", params=pairing_names() + [THREADS])
def srv(request, module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file",
                          example("threads/futures.py"), *engine_args(request.param, 8),
                          processes=1, extra=False, name="futures")


def get(srv, path, timeout=30):
    r = requests.get(srv.url + path, timeout=timeout)
    assert r.status_code == 200, r.text
    return r.json()


def concurrently(srv, paths):
    out = [None] * len(paths)

    def go(i):
        out[i] = get(srv, paths[i])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(paths))]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    return out, time.monotonic() - t0


def test_pool_futures_wait_side_by_side(srv):
    # five 1 s jobs on one worker: together about 1 s, not 5
    out, took = concurrently(srv, ["/pool?s=1"] * 5)
    assert out == [{"slept": 1.0}] * 5
    assert took < 3.5, took


def test_a_request_waiting_on_a_pool_future_leaves_the_worker_free(srv):
    join = threading.Thread(target=get, args=(srv, "/pool?s=2"))
    join.start()
    t0 = time.monotonic()
    assert "hello" in get(srv, "/hello")
    assert time.monotonic() - t0 < 1.5
    join.join(30)


def test_the_jobs_exception_is_raised_where_the_request_waits(srv):
    assert get(srv, "/pool_error") == {"error": "ValueError", "message": "the job failed"}


def test_wait_times_out(srv):
    t0 = time.monotonic()
    j = get(srv, "/pool_timeout?s=0.2")
    assert j["error"] == "TimeoutError", j
    assert time.monotonic() - t0 < 1.8


def test_coroutines_wait_side_by_side(srv):
    out, took = concurrently(srv, ["/coro?s=1"] * 4)
    assert [o["napped"] for o in out] == [1.0] * 4, out
    assert took < 3, took


def test_a_future_of_an_asyncio_loop_in_another_thread(srv):
    out, took = concurrently(srv, ["/aio_future?s=1"] * 3)
    assert out == [{"value": "from the app's loop"}] * 3
    assert took < 3, took


def test_a_late_wake_does_not_cut_a_later_wait_short(srv):
    # the timed-out job finishes later and calls its waker; the core has
    # moved on to another wait by then, which must still last its time
    get(srv, "/pool_timeout?s=0.1")
    t0 = time.monotonic()
    assert get(srv, "/pool?s=2.5") == {"slept": 2.5}
    assert time.monotonic() - t0 >= 2.4
