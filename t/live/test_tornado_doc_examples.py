"""The four examples of uWSGI's Tornado docs (examples/tornado/uwsgi_doc_*.py),
run with the docs' command line (`--tornado 100 --greenlet`) and with fibers.

The examples fetch http://localhost:9191/services and bind 8000 + worker_id:
fixed ports, which a test may not use. Each test runs a copy of the example
in which only those numbers are replaced by free ports (the copy is checked
to differ from the example in nothing else).
"""

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import example, http_request, wait_until

DOCS_COMMAND = ["--tornado", "100", "--greenlet"]
GREENLET = pytest.param(["--greenlet"], id="greenlet")
FIBERS = pytest.param([], id="fibers")
SERVICES_BODY = b"the services answer\n"


def doc_copy(tmp_path, name, **ports):
    """The example `name` with each fixed port (old=new, as strings)
    replaced; returns the copy's path."""
    text = open(example("tornado/" + name)).read()
    copy = text
    for old, new in ports.items():
        assert old in copy, (name, old)
        copy = copy.replace(old, new)
    path = tmp_path / name
    path.write_text(copy)
    return str(path)


def serve(spindle, path, engine, *more):
    return spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", path, "--tornado", "100",
                   *engine, *more, extra=False)


@pytest.fixture
def services():
    """The backend the docs fetch: GET /services on a free port."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            code, body = (200, SERVICES_BODY) if self.path == "/services" else (404, b"no\n")
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()
    t.join(10)


def fetch_copy(tmp_path, name, port):
    return doc_copy(tmp_path, name, **{"localhost:9191": "127.0.0.1:%d" % port})


def test_the_docs_command_line_is_what_greenlet_runs_use():
    assert ["--tornado", "100", *GREENLET.values[0]] == DOCS_COMMAND


def test_fetch_example(spindle, services, tmp_path):
    srv = serve(spindle, fetch_copy(tmp_path, "uwsgi_doc_fetch.py", services), ["--greenlet"])
    for _ in range(3):
        r = http_request(srv.http_addr, "GET", "/", timeout=20)
        assert (r.status, r.body) == (200, SERVICES_BODY), (r, r.body)


def test_chained_timer_example_waits_ten_seconds_and_overlaps(spindle, services, tmp_path):
    # The docs' io_loop = IOLoop.instance() is taken in the master; its
    # add_timeout(time.time() + 10, ...) must fire in the worker.
    srv = serve(spindle, fetch_copy(tmp_path, "uwsgi_doc_chained.py", services), ["--greenlet"])
    t0 = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: (http_request(srv.http_addr, "GET", "/", timeout=40),
                                       time.monotonic() - t0), range(4)))
    for r, took in got:
        assert took >= 10.0, took
    # Four 10 s waits at once, not one after the other.
    assert max(took for _, took in got) < 25, got
    for r, took in got:
        assert (r.status, r.body) == (200, SERVICES_BODY), (r, r.body)


@pytest.mark.parametrize("engine", [GREENLET, FIBERS])
def test_generator_example(spindle, engine):
    srv = serve(spindle, example("tornado/uwsgi_doc_generator.py"), engine)
    r = http_request(srv.http_addr, "GET", "/", timeout=20)
    assert (r.status, r.body) == (200, b"onetwothree"), (r, r.body)
    assert r.chunked


def free_port_run(n):
    """A base port such that base+1 .. base+n are free right now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1] - 1
        if base + n > 65535:
            continue
        socks = []
        try:
            for i in range(2, n + 1):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.fail("no run of %d free ports" % n)


@pytest.mark.parametrize("engine", [GREENLET, FIBERS])
def test_postfork_listen_example(spindle, tmp_path, engine):
    base = free_port_run(2)
    path = doc_copy(tmp_path, "uwsgi_doc_postfork.py", **{"8000 +": "%d +" % base})
    srv = serve(spindle, path, engine, "--processes", "2")
    for wid in (1, 2):
        def tornado_answers():
            try:
                r = http_request(("127.0.0.1", base + wid), "GET", "/", timeout=5)
            except OSError:
                return False
            return (r.status, r.body) == (200, b"Hello, world")

        wait_until(tornado_answers, 20, what="worker %d's Tornado app on port %d" % (wid, base + wid))
    r = http_request(srv.http_addr, "GET", "/", timeout=20)
    assert r.status == 200 and r.body.startswith(b"Hello from WSGI, worker "), (r, r.body)


@pytest.mark.parametrize("name", ["uwsgi_doc_fetch.py", "uwsgi_doc_chained.py"])
def test_greenlet_examples_on_fibers_fail_cleanly(spindle, services, tmp_path, name):
    # They switch greenlets themselves, so they need --greenlet (as uWSGI's
    # docs say); on fibers each request fails with a 500 and the worker
    # keeps serving.
    srv = serve(spindle, fetch_copy(tmp_path, name, services), [])
    for _ in range(2):
        r = http_request(srv.http_addr, "GET", "/", timeout=20)
        assert r.status == 500, (r, r.body)
    assert srv.alive()
    assert len(srv.worker_pids()) == 1
