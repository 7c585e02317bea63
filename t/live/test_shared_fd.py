"""Several cores parked on one fd all wake when it becomes ready, under each
loop engine and suspend engine (regression: the Tornado engine refused the
second handler for an fd, so the second waiter slept until its timeout)."""
import threading
import time

import pytest
import requests

from harness import example, pairing_args, pairing_names

@pytest.mark.parametrize("pairing", pairing_names())
def test_every_waiter_on_a_shared_fd_wakes(spindle, pairing):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("async/shared_fd.py"),
                *pairing_args(pairing, 8), processes=1, extra=False)
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


@pytest.mark.parametrize("pairing", pairing_names())
def test_closing_an_fd_a_core_waits_on_leaves_no_stale_registration(spindle, pairing):
    # Regression: the Tornado engine kept the IOLoop handler of an fd closed
    # under a parked core, so the next socket with that number could not be
    # registered and its client was never answered.
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("async/closed_fd.py"),
                *pairing_args(pairing, 8), processes=1, extra=False)
    waiter = []
    t = threading.Thread(target=lambda: waiter.append(
        requests.get(s.url + "/wait?t=3", timeout=30).text))
    t.start()
    deadline = time.monotonic() + 15
    while requests.get(s.url + "/parked", timeout=10).text != "yes":
        assert time.monotonic() < deadline, "the waiter never parked"
        time.sleep(0.05)
    assert requests.get(s.url + "/close", timeout=10).text == "closed"
    # New connections (held open together) take the freed fd numbers.
    sessions = [requests.Session() for _ in range(6)]
    try:
        for _ in range(3):
            for sess in sessions:
                assert sess.get(s.url + "/hello", timeout=10).text == "hello"
    finally:
        for sess in sessions:
            sess.close()
    t.join(20)
    assert not t.is_alive() and waiter and waiter[0] in ("ready", "timeout"), waiter
