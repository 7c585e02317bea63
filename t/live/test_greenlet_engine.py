"""The greenlet suspend engine (--greenlet, --suspend greenlet): async cores
that are real greenlets, so request code may use greenlet.getcurrent() and
switch greenlets itself, as uWSGI greenlet apps do.

These tests choose their engines themselves (SPINDLE_EXTRA_ARGS is not
appended); the general suites run on this engine with
SPINDLE_EXTRA_ARGS="--greenlet --async 8".
"""

import hashlib
import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import chunked, example, http_request, run_spindle, wait_until


def engines(workdir):
    """(loop engines, suspend engines) as listed by --help."""
    rc, out, err = run_spindle(["--help"], workdir)
    assert rc == 0, err
    loops = re.search(r"loop engines: (.*)", out)
    suspends = re.search(r"suspend engines: (.*)", out)
    split = lambda m: [s.strip() for s in m.group(1).split(",")] if m else []  # noqa: E731
    return split(loops), split(suspends)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    loops, suspends = engines(tmp_path_factory.mktemp("help"))
    if "greenlet" not in suspends:
        pytest.skip("spindle was built without the greenlet plugin")
    return loops


@pytest.fixture(scope="module")
def basics(compiled, module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file",
                          example("greenlet/basics.py"), "--greenlet", "--async", "8",
                          "--processes", "1", extra=False)


def get_json(srv, path, timeout=15.0):
    r = http_request(srv.http_addr, "GET", path, timeout=timeout)
    assert r.status == 200, "GET %s: %r %r" % (path, r, r.body[:500])
    return json.loads(r.body)


def post_json(srv, path, body, headers=()):
    r = http_request(srv.http_addr, "POST", path, headers=headers, body=body)
    assert r.status == 200, "POST %s: %r %r" % (path, r, r.body[:500])
    return json.loads(r.body)


def in_thread(fn, *args):
    """Runs fn(*args) in a thread; the returned callable joins it (bounded)
    and returns fn's result or raises what fn raised."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: B902 - re-raised in the caller
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def join(timeout=15.0):
        t.join(timeout)
        assert not t.is_alive(), "request still running after %.0fs" % timeout
        if "error" in box:
            raise box["error"]
        return box["value"]

    return join


# --- choosing the engine ----------------------------------------------------

def test_hello_on_greenlet_cores(compiled, spindle):
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("hello.py"),
                  "--greenlet", "--async", "8", extra=False)
    for _ in range(3):  # the same cores again: a core is reused, not respawned
        r = http_request(srv.http_addr, "GET", "/")
        assert r.status == 200
        assert r.body == b"Hello, World!\n"
    assert re.search(r"master \(pid \d+\): .*suspend greenlet", srv.log_text())


def test_suspend_greenlet_is_the_same_engine(compiled, spindle):
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("greenlet/basics.py"),
                  "--suspend", "greenlet", "--async", "4", extra=False)
    assert "suspend greenlet" in srv.log_text()
    out = get_json(srv, "/sleep?s=0.01")
    assert out["parent_is_main"] and out["same_greenlet"]


def test_greenlet_from_an_ini_file(compiled, spindle, tmp_path):
    ini = tmp_path / "g.ini"
    ini.write_text("[uwsgi]\nhttp-socket = 127.0.0.1:0\nwsgi-file = %s\ngreenlet = true\n"
                   "async = 4\n" % example("greenlet/basics.py"))
    srv = spindle("--ini", str(ini), extra=False)
    assert "suspend greenlet" in srv.log_text()
    assert get_json(srv, "/sleep?s=0.01")["parent_is_main"]


def test_help_lists_the_engine_and_the_flag(compiled, tmp_path):
    rc, out, err = run_spindle(["--help"], tmp_path)
    assert rc == 0, err
    assert re.search(r"--greenlet\b", out)
    assert re.search(r"suspend engines: .*\bgreenlet\b", out)


def test_unknown_suspend_engine_exits_2_with_one_line(compiled, tmp_path):
    rc, out, err = run_spindle(["--http-socket", "127.0.0.1:0", "--wsgi-file",
                                example("hello.py"), "--suspend", "no-such-engine"], tmp_path)
    assert rc == 2, "exit %s; stderr: %s" % (rc, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, "expected one line on stderr, got: %r" % lines
    assert "no-such-engine" in lines[0]
    assert "greenlet" in lines[0], "the line should list the engines there are"
    assert not os.listdir(tmp_path), "nothing may be created on a bad option"


# --- plain WSGI on greenlet cores -------------------------------------------

def test_generator_response_stays_in_its_greenlet(basics):
    r = http_request(basics.http_addr, "GET", "/stream?n=6&s=0.01")
    assert r.status == 200
    assert (r.header("Transfer-Encoding") or "").lower() == "chunked"
    lines = r.body.decode().splitlines()
    assert [line.split()[0] for line in lines] == [str(i) for i in range(6)]
    greenlets = {line.split()[1] for line in lines}
    assert len(greenlets) == 1, "a generator's chunks came from several greenlets: %r" % lines


@pytest.mark.parametrize("size", [0, 1, 65536, 3 * 1024 * 1024 + 17])
def test_post_body_with_length(basics, size):
    body = os.urandom(size)
    out = post_json(basics, "/echo", body, headers=[("Content-Length", str(size))])
    assert out == {"length": size, "sha256": hashlib.sha256(body).hexdigest()}


def test_post_body_chunked(basics):
    parts = [os.urandom(n) for n in (1, 4000, 70000, 3)]
    whole = b"".join(parts)
    out = post_json(basics, "/echo", chunked(*parts),
                    headers=[("Transfer-Encoding", "chunked")])
    assert out == {"length": len(whole), "sha256": hashlib.sha256(whole).hexdigest()}


def test_fifty_sleeping_requests_share_eight_greenlet_cores(basics):
    get_json(basics, "/reset")
    n, pause = 50, 0.3
    t0 = time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(lambda i: get_json(basics, "/sleep?s=%s" % pause), range(n)))
    elapsed = time.monotonic() - t0
    # One at a time would take 15 s; 8 cores at once, ceil(50 / 8) = 7 rounds.
    assert elapsed < 7 * pause + 2.5, "50 sleeps of %.1fs took %.2fs" % (pause, elapsed)
    assert all(r["same_greenlet"] and r["parent_is_main"] for r in results)
    assert max(r["peak"] for r in results) == 8, "expected the 8 cores to sleep at once"
    # Each core is one greenlet for the worker's whole life.
    by_core = {}
    for r in results:
        by_core.setdefault(r["core_id"], set()).add(r["greenlet"])
    assert all(len(g) == 1 for g in by_core.values()), by_core
    assert len({next(iter(g)) for g in by_core.values()}) == len(by_core)


# --- greenlet-style request code ------------------------------------------

@pytest.fixture
def parker(compiled, spindle):
    return spindle("--http-socket", "127.0.0.1:0", "--wsgi-file",
                   example("greenlet/park_resume.py"), "--greenlet", "--async", "8",
                   "--processes", "1", extra=False)


def test_request_parked_by_another_resumes_in_its_greenlet(parker):
    join = in_thread(get_json, parker, "/park?key=a")
    woke = wait_until(lambda: (lambda o: o if o["found"] else None)(get_json(parker,
                                                                          "/unpark?key=a")),
                      10, what="/park?key=a to be parked")
    assert woke["resumed"] is True
    assert woke["waker_is_other_greenlet"] is True
    parked = join()
    assert parked["resumed"] and parked["same_greenlet"]
    assert parked["core_id"] == parked["parked_core"] != woke["waker_core"]
    # Nothing is left waiting under that key.
    assert get_json(parker, "/unpark?key=a") == {"found": False, "resumed": False}


def test_child_greenlet_parks_and_resumes_on_its_own(parker):
    n, pause = 6, 0.4
    t0 = time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(lambda i: get_json(parker, "/nested?s=%s" % pause), range(n)))
    elapsed = time.monotonic() - t0
    assert elapsed < pause + 1.5, "%d nested sleeps of %.1fs took %.2fs" % (n, pause, elapsed)
    for r in results:
        assert r["child_core"] == r["child_core_after"] == r["core_id"], r
        assert r["child_parent_is_request"] and r["same_outer"] and r["child_dead"], r
    assert len({r["core_id"] for r in results}) == n


def test_loop_callback_switches_a_request_back_in(compiled, spindle):
    """The uWSGI pattern: me.parent.switch() to the loop; an IOLoop callback
    calls me.switch()."""
    if "tornado" not in compiled:
        pytest.skip("spindle was built without the tornado loop engine")
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file",
                  example("greenlet/park_resume.py"), "--greenlet", "--tornado", "8",
                  "--processes", "1", extra=False)
    n, pause = 6, 0.4
    t0 = time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(lambda i: get_json(srv, "/loop_park?s=%s" % pause), range(n)))
    elapsed = time.monotonic() - t0
    assert elapsed < pause + 1.5, "%d loop parks of %.1fs took %.2fs" % (n, pause, elapsed)
    for r in results:
        assert r["value"] == "woken by the loop" and r["same_greenlet"], r
    # The cores are usable afterwards, by the scheduler's own parking too.
    out = get_json(srv, "/nested?s=0.05")
    assert out["same_outer"] and out["child_dead"]


def test_a_chunk_goes_out_before_the_app_switches_away(compiled, spindle, tmp_path):
    """Under --greenlet the app may park by switching greenlets itself, past
    the scheduler: a chunk it yielded must not wait in the server for the
    next one. The client asks for /release only once the first chunk came."""
    import socket
    app = tmp_path / "held.py"
    app.write_text(
        "import greenlet, spindle\n"
        "WAITING = []\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    if environ['PATH_INFO'] == '/release':\n"
        "        for g in WAITING:\n"
        "            spindle.add_callback(g.switch)\n"
        "        return [b'released\\n']\n"
        "    def body():\n"
        "        yield b'first\\n'\n"
        "        me = greenlet.getcurrent()\n"
        "        WAITING.append(me)\n"
        "        me.parent.switch()\n"
        "        yield b'second\\n'\n"
        "    return body()\n")
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", str(app), "--greenlet",
                  "--async", "4", "--processes", "1", extra=False)
    host, port = srv.http_addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as c:
        c.sendall(b"GET /held HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = b""
        while b"first\n" not in got:
            part = c.recv(65536)
            assert part, "closed before the first chunk: %r" % got
            got += part
        assert http_request(srv.http_addr, "GET", "/release").status == 200
        while True:
            part = c.recv(65536)
            if not part:
                break
            got += part
    assert b"second\n" in got and got.endswith(b"0\r\n\r\n"), got
