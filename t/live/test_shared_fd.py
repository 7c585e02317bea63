"""Several cores parked on one fd all wake when it becomes ready, under each
loop engine and suspend engine (regression: the Tornado engine refused the
second handler for an fd, so the second waiter slept until its timeout)."""
import threading
import time

import pytest
import requests

from harness import example

PAIRINGS = [[], ["--greenlet"], ["--loop", "tornado"], ["--loop", "tornado", "--greenlet"]]


@pytest.mark.parametrize("engines", PAIRINGS, ids=["ev-fibers", "ev-greenlet", "tornado-fibers",
                                                   "tornado-greenlet"])
def test_every_waiter_on_a_shared_fd_wakes(spindle, engines):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("async/shared_fd.py"),
                "--async", "8", *engines, processes=1, extra=False)
    results = []

    def wait():
        results.append(requests.get(s.url + "/wait", timeout=30).text)

    threads = [threading.Thread(target=wait) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 15
    while requests.get(s.url + "/waiting", timeout=10).text != "3":
        assert time.monotonic() < deadline, "the three waiters never parked"
        time.sleep(0.02)
    t0 = time.monotonic()
    assert requests.get(s.url + "/poke", timeout=10).text == "poked"
    for t in threads:
        t.join(30)
    assert results == ["ready"] * 3
    # All woke on the poke, none by its 10 s timeout.
    assert time.monotonic() - t0 < 5
