"""spindle.call_later() and spindle.add_callback(): Python callables run by
the worker's loop, outside every request, on every pairing of loop engine
(ev, tornado) and suspend engine (fibers, greenlet). Under --greenlet a
request may step out with me.parent.switch() and be switched back by such a
callback (the uWSGI greenlet pattern); on any engine a callback may
spindle.resume() a request parked in spindle.suspend().

The app is examples/greenlet/loop_switch.py. These tests choose their engines
themselves (SPINDLE_EXTRA_ARGS is not appended).
"""

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import example, http_request, pairing_args, pairing_names, run_spindle, wait_until

CORES = 30



@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(loop engines, suspend engines) this binary was built with."""
    rc, out, err = run_spindle(["--help"], tmp_path_factory.mktemp("help"))
    assert rc == 0, err
    found = []
    for what in ("loop", "suspend"):
        m = re.search(r"%s engines: (.*)" % what, out)
        found.append({s.strip() for s in m.group(1).split(",")} if m else set())
    found[1].add("fibers")
    return found


@pytest.fixture(scope="module", params=pairing_names())
def srv(request, compiled, module_spindle):
    loop, suspend = request.param.split("-")
    if loop not in compiled[0] or suspend not in compiled[1]:
        pytest.skip("spindle was built without the %s engine" %
                    (loop if loop not in compiled[0] else suspend))
    s = module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file",
                       example("greenlet/loop_switch.py"), "--processes", "1",
                       *pairing_args(request.param, CORES), extra=False,
                       name="spindle-" + request.param)
    s.loop, s.suspend = loop, suspend
    yield s
    s.stop()


def get_json(srv, path, timeout=20.0):
    r = http_request(srv.http_addr, "GET", path, timeout=timeout)
    assert r.status == 200, "GET %s: %r %r" % (path, r, r.body[:500])
    return json.loads(r.body)


def tag():
    return uuid.uuid4().hex[:10]


def check_outside_requests(srv, info):
    """A loop callback runs on the main context: no core, main greenlet."""
    assert info["core_id"] == -1, "a loop callback ran inside a core: %s" % info
    if srv.suspend == "greenlet":
        assert info["main_greenlet"] is True, "a loop callback ran off the main greenlet: %s" % info


def park_route(srv):
    """How the app parks here: the greenlet pattern when the cores are
    greenlets, suspend()/resume() otherwise."""
    return "switch" if srv.suspend == "greenlet" else "resume"


def check_parked_answer(srv, route, j, seconds):
    assert j["value"] == "woken by the loop", j
    assert j["elapsed"] >= seconds * 0.95, "woken before the timer: %s" % j
    if route == "switch":
        assert j["same_greenlet"] is True, j
        assert j["core_after"] == j["core_id"] >= 0, j
    else:
        assert j["callback"]["resumed"] is True, j
        check_outside_requests(srv, j["callback"])


def test_requests_resumed_by_timers_run_concurrently(srv):
    route = park_route(srv)
    seconds = 0.4
    check_parked_answer(srv, route, get_json(srv, "/%s?s=0.05" % route), 0.05)  # warm

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=CORES) as pool:
        results = list(pool.map(lambda i: get_json(srv, "/%s?s=%s" % (route, seconds)),
                                range(CORES)))
    took = time.monotonic() - t0
    for j in results:
        check_parked_answer(srv, route, j, seconds)
    serial = CORES * seconds
    assert took < serial / 4, "%d requests parked %.1fs each took %.2fs (serial: %.0fs)" % (
        CORES, seconds, took, serial)
    if route == "switch":
        cores = {j["core_id"] for j in results}
        assert len(cores) == CORES, "the parked requests did not each hold a core: %s" % cores


def test_a_timer_callback_resumes_a_suspended_request(srv):
    j = get_json(srv, "/resume?s=0.15")
    check_parked_answer(srv, "resume", j, 0.15)


@pytest.mark.parametrize("via", ["switch", "resume"])
def test_add_callback_runs_soon_and_not_inline(srv, via):
    if via == "switch" and srv.suspend != "greenlet":
        pytest.skip("me.parent.switch() needs greenlet cores")
    j = get_json(srv, "/soon?via=%s" % via)
    assert j["value"] == "soon", j
    assert j["ran_before_return"] is False, "add_callback() ran its callable inline: %s" % j
    assert 0 <= j["delay"] < 0.5, "add_callback() took %.3fs to run" % j["delay"]
    if via == "switch":
        assert j["info"]["same_greenlet"] is True, j
    else:
        assert j["info"]["resumed"] is True, j
        check_outside_requests(srv, j["info"])


def test_cancel_prevents_the_call(srv):
    t = tag()
    j = get_json(srv, "/cancel?tag=%s&s=0.1" % t)
    assert j["pending_before"] is True and j["first_cancel"] is True, j
    assert j["second_cancel"] is False and j["pending_after"] is False, j
    # The call scheduled beside it ran, so the wait was long enough.
    assert j["kept_ran"] is True and j["kept_pending"] is False, j
    assert j["cancelled_ran"] is False, "a cancelled call ran: %s" % j
    assert j["cancel_after_run"] is False, j
    fired = get_json(srv, "/fired?tag=%s" % t)
    assert set(fired) == {t + "-kept"}, fired
    check_outside_requests(srv, fired[t + "-kept"])


def test_an_exception_in_a_callback_is_logged_and_the_loop_carries_on(srv):
    t = tag()
    pids = srv.worker_pids()
    offset = srv.log_offset()
    assert get_json(srv, "/raise?tag=%s" % t) == {"scheduled": True}
    for what in ("call_later", "add_callback"):
        srv.wait_for_log(r"ERROR python: the spindle\.%s callback <function raise_\.<locals>\.boom"
                         % what, after=offset)
    srv.wait_for_log(r"ValueError: callback failure %s" % t, count=2, after=offset)
    assert re.search(r"Traceback \(most recent call last\)", srv.log_text()[offset:])
    fired = wait_until(lambda: (lambda f: f if t + "-after" in f else None)(
        get_json(srv, "/fired?tag=%s" % t)), 10, what="the callback after the failing ones")
    check_outside_requests(srv, fired[t + "-boom"])
    check_outside_requests(srv, fired[t + "-after"])
    assert srv.worker_pids() == pids, "the worker was replaced"
    assert "respawning" not in srv.log_text()[offset:]
    route = park_route(srv)
    check_parked_answer(srv, route, get_json(srv, "/%s?s=0.05" % route), 0.05)


def test_callbacks_from_postfork_run_and_import_time_calls_raise(srv):
    j = get_json(srv, "/startup")
    assert "worker's loop" in (j["import_error"] or ""), j
    for key in ("postfork-soon", "postfork-later"):
        info = j["postfork"][key]
        assert info is not None, "the call scheduled by @postfork never ran: %s" % j
        assert info["value"] == "from postfork"
        check_outside_requests(srv, info)


def test_bad_calls_raise(srv):
    j = get_json(srv, "/errors")
    for key in ("negative", "nan"):
        assert j[key][0] == "ValueError", j
    for key in ("not_callable", "no_fn", "add_not_callable"):
        assert j[key][0] == "TypeError", j
    for key in ("thread_call_later", "thread_add_callback"):
        assert j[key][0] == "RuntimeError" and "thread" in j[key][1], j


def test_every_call_releases_its_callable_and_arguments(srv):
    for _ in range(2):
        j = get_json(srv, "/churn?n=3000")
        assert j["cancelled"] == 1500, j
        assert j["calls"] == j["want"] == 4500, j
        assert j["refs_back"] is True, "calls that ran or were cancelled kept references: %s" % j
