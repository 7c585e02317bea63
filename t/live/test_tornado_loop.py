"""The worker's loop under --tornado: the loop an app captured at import
time is the one that runs in every worker, with no kernel object shared
across processes; requests see it as current but never as running, so a
Django project's ORM works (uWSGI's --tornado breaks it)."""

import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import example, http_request, wait_until

ENGINES = [pytest.param([], id="fibers"), pytest.param(["--greenlet"], id="greenlet")]


def get_json(addr, path):
    r = http_request(addr, "GET", path, timeout=20)
    assert r.status == 200, (r, r.body)
    return json.loads(r.body)


@pytest.mark.parametrize("engine", ENGINES)
def test_loop_captured_at_import_runs_in_every_worker(spindle, engine):
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file",
                  example("tornado/import_time_loop.py"), "--tornado", "10", *engine,
                  "--processes", "2", extra=False)
    everything = {"callback": 1, "call_later": 1, "add_timeout": 1, "handler": 1}
    seen = {}

    def both_workers_ran_everything():
        for _ in range(4):
            st = get_json(srv.http_addr, "/state")
            seen[st["pid"]] = st
        return len(seen) == 2 and all(st["ran"] == everything for st in seen.values())

    wait_until(both_workers_ran_everything, 20,
               what="both workers running what the app registered at import")
    for pid, st in seen.items():
        assert pid != st["master_pid"], st
        # The very objects the app captured in the master...
        assert st["same_ioloop"] and st["same_asyncio_loop"] and st["ioloop_wraps_it"], st
        # ...on a selector and a wake-up pipe of this worker's own.
        assert st["selector"] == "SpindleSelector", st
        assert st["pipe_is_new"] and not st["master_epoll_in_use"], st
        # Everything the app registered at import ran here, once.
        assert st["ran"] == everything, st
        assert st["running"] is False, st


@pytest.mark.parametrize("engine", ENGINES)
def test_a_request_sees_no_running_loop_even_after_a_wait(spindle, engine):
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file",
                  example("tornado/import_time_loop.py"), "--tornado", "10", *engine,
                  processes=1, extra=False)
    assert get_json(srv.http_addr, "/state")["running"] is False
    # Resumed by a done callback that ran on the loop: still not running.
    assert get_json(srv.http_addr, "/wait") == {"waited": "timer", "running": False}


def test_a_greenlet_the_app_switches_back_sees_no_running_loop(spindle):
    # uWSGI's documented style: the request switches to its parent and an
    # IOLoop callback switches back to it. The callback runs inside the
    # running loop; the request, after it, must not see it running.
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file",
                  example("tornado/import_time_loop.py"), "--tornado", "10", "--greenlet",
                  processes=1, extra=False)
    for _ in range(3):
        assert get_json(srv.http_addr, "/switch") == {"callback_sees_running": True,
                                                      "running": False}


ORM_VIEW = textwrap.dedent("""\
    from django.contrib.auth.models import User
    from django.http import JsonResponse


    def orm(request):
        User.objects.get_or_create(username=request.GET["name"])
        names = sorted(User.objects.values_list("username", flat=True))
        return JsonResponse({"names": names})
    """)


@pytest.fixture(scope="module")
def django_project(tmp_path_factory):
    """A project as `django-admin startproject` makes it (sqlite), with one
    ORM view and its tables migrated."""
    root = tmp_path_factory.mktemp("django")
    subprocess.run(["django-admin", "startproject", "mysite", str(root)], check=True)
    (root / "mysite" / "orm_view.py").write_text(ORM_VIEW)
    urls = root / "mysite" / "urls.py"
    urls.write_text(urls.read_text() + "\nfrom mysite.orm_view import orm\n"
                    "urlpatterns.append(path('orm/', orm))\n")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=root, check=True,
                   timeout=120)
    return root


@pytest.mark.parametrize("engine", ENGINES)
def test_django_orm_view_works_under_tornado(spindle, django_project, engine):
    srv = spindle("--http-socket", "127.0.0.1:0", "--chdir", str(django_project),
                  "--pythonpath", str(django_project), "--module", "mysite.wsgi:application",
                  "--tornado", "10", *engine, processes=1, extra=False)
    tag = "greenlet" if engine else "fibers"
    first = get_json(srv.http_addr, "/orm/?name=%s-a" % tag)
    assert "%s-a" % tag in first["names"], first
    # Several requests at once, on several cores.
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: get_json(srv.http_addr, "/orm/?name=%s-%d" % (tag, i)),
                            range(4)))
    last = get_json(srv.http_addr, "/orm/?name=%s-z" % tag)
    assert {"%s-%d" % (tag, i) for i in range(4)} <= set(last["names"]), (got, last)
    assert "SynchronousOnlyOperation" not in srv.log_text()


BARRIER_APP = textwrap.dedent("""\
    import greenlet
    from tornado.ioloop import IOLoop

    N = {n}
    waiting = []


    def application(environ, start_response):
        # uWSGI's style: park by switching to the parent; an IOLoop callback
        # switches back once N requests are parked at once.
        me = greenlet.getcurrent()
        waiting.append(me)
        if len(waiting) == N:
            loop = IOLoop.current()
            for g in waiting:
                loop.add_callback(g.switch)
            del waiting[:]
        me.parent.switch()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"met"]
    """)


def test_cores_the_app_switches_back_to_are_reused(spindle, tmp_path):
    """More requests than the idle cores kept (128) park at once, resumed by
    the app's own IOLoop callbacks; once they are done, as many can park at
    once again, round after round: a core that ends while the app, not the
    server, runs it keeps no place under --tornado N."""
    n = 200
    app = tmp_path / "barrier.py"
    app.write_text(BARRIER_APP.format(n=n))
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", str(app), "--tornado", str(n),
                  "--greenlet", "--listen", "1024", processes=1, extra=False)

    def one(_):
        r = http_request(srv.http_addr, "GET", "/", timeout=30)
        return r.status, r.body

    with ThreadPoolExecutor(n) as pool:
        for _ in range(3):
            assert set(pool.map(one, range(n))) == {(200, b"met")}
