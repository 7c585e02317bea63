"""--threads N: each worker runs N serving threads, each with its own loop
and async cores, so a request that blocks in C or in time.sleep holds only
its thread (the issue: Django with processes = 2, threads = 4 expects eight
blocking requests at once)."""
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time

import pytest
import requests

from harness import MAXREQ_RE, example, run_spindle, wait_until

BLOCKING = example("threads/blocking.py")


def get(srv, path, timeout=30):
    r = requests.get(srv.url + path, timeout=timeout)
    assert r.status_code == 200, r.text
    return r.json()


def at_once(srv, paths, timeout=60):
    """GETs every path concurrently; (answers in order, seconds taken)."""
    out = [None] * len(paths)

    def go(i):
        out[i] = get(srv, paths[i], timeout)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(paths))]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads)
    return out, time.monotonic() - t0


@pytest.fixture(scope="module")
def four(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", BLOCKING,
                          "--threads", "4", processes=1, extra=False, name="threads4")


@pytest.mark.parametrize("path", ["/sleep?s=1", "/csleep?s=1"])
def test_blocking_requests_hold_only_their_thread(four, path):
    # four requests blocking 1 s each, one worker with 4 threads: about 1 s
    out, took = at_once(four, [path] * 4)
    assert took < 3, took
    assert len({o["thread"] for o in out}) == 4, out
    assert len({o["core"] for o in out}) == 4, out


def test_a_fifth_blocking_request_waits_for_a_free_thread(four):
    out, took = at_once(four, ["/sleep?s=1"] * 5)
    assert len({o["pid"] for o in out}) == 1
    assert 1.9 < took < 5, took


def test_pygilstate_ensure_works_on_every_thread(four):
    # a ctypes callback enters Python through PyGILState_Ensure; with the
    # requests sleeping first, each of the four threads runs one
    out, _ = at_once(four, ["/gilstate?s=0.5"] * 4)
    assert len({o["thread"] for o in out}) == 4, out
    for o in out:
        assert o["sorted"] == [1, 2, 3, 5, 7, 8, 9] and o["callbacks"] > 0, o


def test_spindle_wait_on_a_pool_future_from_every_thread(four):
    out, took = at_once(four, ["/pool?s=1"] * 4)
    assert [o["slept"] for o in out] == [1] * 4
    assert took < 3, took


def test_the_log_says_threads_imply_enable_threads(four):
    assert re.search(r"threads: 4 per worker, 1 async core\(s\) each; enable-threads implied",
                     four.log_text())
    assert re.search(r"worker 1 \(pid \d+\) ready, 4 threads", four.log_text())


def test_threads_times_async_cores_per_worker(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", BLOCKING, "--threads", "2",
                "--async", "3", processes=1, extra=False)
    # threading.local stays per request while requests interleave on fibers
    paths = ["/local?v=r%d&s=1" % i for i in range(6)]
    out, took = at_once(s, paths)
    assert [o["value"] for o in out] == ["r%d" % i for i in range(6)], out
    assert took < 3.5, took
    assert sorted(o["core"] for o in out) == [0, 1, 2, 3, 4, 5], out
    assert len({o["thread"] for o in out}) == 2, out


def test_max_requests_counts_the_worker_not_the_thread(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", BLOCKING, "--threads", "4",
                "--max-requests", "8", processes=1, extra=False)
    first = s.worker_pids()[1]
    out, _ = at_once(s, ["/sleep?s=0.5"] * 4)
    assert len({o["thread"] for o in out}) == 4, out
    assert not MAXREQ_RE.search(s.log_text())
    at_once(s, ["/sleep?s=0.5"] * 4)
    # eight requests over four threads recycle the worker once
    s.wait_for_log(r"worker 1 \(pid %d\) reached max-requests \(8\)" % first, timeout=15)
    wait_until(lambda: s.worker_pids().get(1) not in (None, first), 20, what="new worker")
    assert get(s, "/pid")["pid"] == s.worker_pids()[1]
    assert len(MAXREQ_RE.findall(s.log_text())) == 1


def test_harakiri_names_the_thread_and_the_request(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", BLOCKING, "--threads", "3",
                "--harakiri", "2", processes=1, extra=False)
    old = s.worker_pids()[1]
    def stuck_request():
        try:
            requests.get(s.url + "/sleep?s=60", timeout=40)
        except requests.RequestException:
            pass  # the worker is killed under it

    stuck = threading.Thread(target=stuck_request, daemon=True)
    stuck.start()
    # the other threads keep serving while one is stuck
    wait_until(lambda: get(s, "/who")["pid"] == old, 10, what="a free thread")
    m = s.wait_for_log(r"harakiri: worker 1 \(pid %d\) stuck [\d.]+s in \"([^\"]*)\" on thread "
                       r"([123]); killing" % old, timeout=20)
    assert m[0].group(1) == "GET /sleep?s=60 HTTP/1.1", m[0].group(0)
    wait_until(lambda: s.worker_pids().get(1) not in (None, old), 20, what="new worker")


def test_graceful_stop_lets_every_thread_finish(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", BLOCKING, "--threads", "4",
                processes=1, extra=False)
    results = []

    def slow():
        results.append(requests.get(s.url + "/sleep?s=1.5", timeout=30).status_code)

    clients = [threading.Thread(target=slow) for _ in range(3)]
    for t in clients:
        t.start()
    # the fourth thread answers while three sleep
    wait_until(lambda: get(s, "/busy")["sleeping"] == 3, 10, what="three sleeping requests")
    s.signal(signal.SIGTERM)
    for t in clients:
        t.join(30)
    assert results == [200, 200, 200]
    s.wait_for_log(r"worker 1 \(pid \d+\) exited with status 0", timeout=20)


@pytest.mark.parametrize("engine", [["--tornado", "4"], ["--greenlet"], ["--loop", "tornado"]])
def test_unsupported_engines_are_refused_at_start(tmp_path, engine):
    code, out, err = run_spindle(["--http-socket", "127.0.0.1:0", "--wsgi-file", BLOCKING,
                                  "--threads", "2", *engine], tmp_path)
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "--threads" in lines[0], err


# -- Django, as `django-admin startproject` makes it -------------------------

VIEWS = '''
import spindle
from django.db import connection
from django.http import JsonResponse


def hello(request):
    return JsonResponse({"hello": spindle.core_id()})


def blocked(request):
    spindle.log("blocked view: querying")
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM items")
        (n,) = c.fetchone()
    return JsonResponse({"count": n})
'''


@pytest.fixture
def django_project(tmp_path):
    subprocess.run(["/usr/bin/python3", "-m", "django", "startproject", "proj", str(tmp_path)],
                   check=True, timeout=60, env=dict(os.environ, PYTHONPATH=""))
    (tmp_path / "proj" / "views.py").write_text(VIEWS)
    urls = tmp_path / "proj" / "urls.py"
    urls.write_text(urls.read_text().replace(
        "from django.urls import path",
        "from django.urls import path\nfrom proj import views").replace(
        "path('admin/', admin.site.urls),",
        "path('admin/', admin.site.urls),\n    path('hello/', views.hello),\n"
        "    path('blocked/', views.blocked),"))
    settings = tmp_path / "proj" / "settings.py"
    settings.write_text(settings.read_text() +
                        "\nDATABASES['default']['OPTIONS'] = {'timeout': 60}\n")
    db = sqlite3.connect(str(tmp_path / "db.sqlite3"))
    db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY)")
    db.executemany("INSERT INTO items VALUES (?)", [(i,) for i in range(5)])
    db.commit()
    db.close()
    return tmp_path


def test_django_view_blocked_on_sqlite_holds_one_thread(spindle, django_project):
    s = spindle("--http-socket", "127.0.0.1:0", "--pythonpath", str(django_project),
                "--module", "proj.wsgi", "--threads", "4", processes=1, extra=False)
    assert "hello" in get(s, "/hello/")
    # hold the database's write lock: the view's query blocks in sqlite (C)
    lock = sqlite3.connect(str(django_project / "db.sqlite3"), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    result = []
    view = threading.Thread(target=lambda: result.append(get(s, "/blocked/", timeout=60)))
    view.start()
    try:
        s.wait_for_log(r"blocked view: querying", timeout=15)
        # the other threads serve while the query waits
        out, took = at_once(s, ["/hello/"] * 12)
        assert all("hello" in o for o in out)
        assert took < 8, took
        assert view.is_alive() and not result
    finally:
        lock.execute("COMMIT")
        lock.close()
    view.join(30)
    assert result == [{"count": 5}]
