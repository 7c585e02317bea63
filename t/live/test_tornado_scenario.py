"""WSGI apps on Tornado's IOLoop (--tornado N), parked on Tornado futures and
timers, under both suspend engines (fibers, --greenlet): the apps in
examples/tornado/.

uWSGI's tornado plugin runs a WSGI app on the IOLoop only in callback style,
and its users report that it and greenlets do not work together. Here a
request fetches a URL with AsyncHTTPClient and waits for it in straight-line
code, either with spindle.wait or by switching greenlets itself; plain WSGI
generators stream unmodified; and a native tornado.web.Application shares
each worker's loop with the WSGI cores.
"""

import json
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import RawConn, build_request, example, http_request, pid_alive, wait_until

FIBERS = pytest.param([], id="fibers")
GREENLET = pytest.param(["--greenlet"], id="greenlet")
ENGINES = [FIBERS, GREENLET]

# (app, suspend-engine arguments): the greenlet-style app needs --greenlet.
FETCH_PAIRS = [
    pytest.param("fetch_wait.py", [], id="wait-fibers"),
    pytest.param("fetch_wait.py", ["--greenlet"], id="wait-greenlet"),
    pytest.param("fetch_greenlet.py", ["--greenlet"], id="greenlet_style-greenlet"),
]

TORNADO_LINE = r"tornado app of worker (\d+) listening on 127\.0\.0\.1:(\d+)"


def serve(spindle, app, cores, engine, *more, env=None, name=None):
    """A server on Tornado's loop; SPINDLE_EXTRA_ARGS is left out, since the
    engines are what these tests choose."""
    return spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("tornado/" + app),
                   "--tornado", str(cores), *engine, *more, env=env, extra=False, name=name)


def get(addr, path, timeout=20.0, **kw):
    return http_request(addr, "GET", path, timeout=timeout, **kw)


def get_json(addr, path, timeout=20.0):
    r = get(addr, path, timeout)
    assert r.status == 200, (r, r.body)
    return json.loads(r.body)


def many(addr, paths, timeout=60.0):
    """Every path on its own connection, all at once; returns (responses in
    order, wall seconds)."""
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        out = list(pool.map(lambda p: get(addr, p, timeout), paths))
    return out, time.monotonic() - t0


def assert_engine(srv, engine):
    line = srv.wait_for_log(r"loop (\w+), suspend (\w+)")[0]
    assert line.group(1) == "tornado", line.group(0)
    assert line.group(2) == ("greenlet" if engine else "fibers"), line.group(0)


@pytest.fixture
def local_backend():
    """A tiny HTTP server in this process on a free port: GET /anything
    answers "local:/anything"."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = ("local:%s" % self.path).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()
    t.join(10)


# -- 1. fetch a URL with AsyncHTTPClient and park until it answers ----------

@pytest.mark.parametrize("app,engine", FETCH_PAIRS)
def test_fetch_from_same_server(spindle, app, engine):
    srv = serve(spindle, app, 8, engine)
    assert_engine(srv, engine)
    for tag in ("first", "second", "third"):
        got = get_json(srv.http_addr, "/fetch?tag=" + tag)
        assert got["code"] == 200, got
        assert got["body"] == "backend:" + tag, got
    # The fetch and the backend request were both served, by the same worker.
    wait_until(lambda: len([l for l in srv.access_lines() if "\"GET /backend?tag=" in l]) == 3,
               10, what="three /backend access lines")


@pytest.mark.parametrize("app,engine", FETCH_PAIRS)
def test_fetch_from_a_local_server(spindle, local_backend, app, engine):
    srv = serve(spindle, app, 4, engine)
    got = get_json(srv.http_addr, "/fetch?url=%s/some/where" % local_backend)
    assert got["code"] == 200, got
    assert got["body"] == "local:/some/where", got


def test_greenlet_style_app_says_it_needs_greenlet(spindle):
    # On the fiber engine the request is no greenlet; the app must say so
    # instead of switching into nowhere.
    srv = serve(spindle, "fetch_greenlet.py", 4, [])
    r = get(srv.http_addr, "/fetch?tag=x")
    assert r.status == 500
    assert b"--greenlet" in r.body



@pytest.mark.parametrize("engine", ENGINES)
def test_wait_on_a_native_coroutine(spindle, engine):
    # spindle.wait also takes an `async def` coroutine that awaits the fetch
    # and an asyncio.sleep itself.
    srv = serve(spindle, "fetch_wait.py", 4, engine)
    t0 = time.monotonic()
    got = get_json(srv.http_addr, "/fetch_coroutine?tag=co&timer=0.2")
    assert got["body"] == "backend:co", got
    assert got["total_seconds"] >= 0.2 and time.monotonic() - t0 >= 0.2, got


@pytest.mark.parametrize("engine", ENGINES)
def test_wait_timeout_gives_up_on_a_slow_fetch(spindle, engine):
    srv = serve(spindle, "fetch_wait.py", 8, engine)
    t0 = time.monotonic()
    got = get_json(srv.http_addr, "/fetch_raise?delay=3&tag=slow&timeout=0.3")
    assert got["error"] == "TimeoutError", got
    assert time.monotonic() - t0 < 2.5
    assert get_json(srv.http_addr, "/fetch?tag=after")["body"] == "backend:after"


# -- 2. the fetch, then a chained IOLoop timer before answering -------------

@pytest.mark.parametrize("app,engine", FETCH_PAIRS)
def test_fetch_then_call_later(spindle, app, engine):
    srv = serve(spindle, app, 8, engine)
    for tag in ("a", "b"):
        t0 = time.monotonic()
        got = get_json(srv.http_addr, "/fetch_timer?timer=0.1&tag=" + tag)
        wall = time.monotonic() - t0
        assert got["body"] == "backend:" + tag, got
        assert got["total_seconds"] >= 0.1, got
        assert got["total_seconds"] >= got["fetch_seconds"] + 0.09, got
        assert wall >= 0.1, wall
        assert wall < 15, wall


@pytest.mark.parametrize("app,engine", FETCH_PAIRS)
def test_timers_of_concurrent_requests_overlap(spindle, app, engine):
    # 20 requests that each fetch and then wait 0.5 s on a timer: parked, not
    # blocking, so together they take far less than 20 * 0.5 s.
    srv = serve(spindle, app, 50, engine)
    get_json(srv.http_addr, "/fetch?tag=warm")
    paths = ["/fetch_timer?timer=0.5&tag=t%d" % i for i in range(20)]
    out, wall = many(srv.http_addr, paths)
    for i, r in enumerate(out):
        assert r.status == 200, r
        got = json.loads(r.body)
        assert got["body"] == "backend:t%d" % i, got
        assert got["total_seconds"] >= 0.5, got
    assert wall < 5, "20 timers of 0.5 s took %.2fs: they did not overlap" % wall


# -- 3. a plain WSGI generator, unmodified ----------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_generator_streams_chunked(spindle, engine):
    srv = serve(spindle, "generator.py", 4, engine)
    assert_engine(srv, engine)
    r = get(srv.http_addr, "/")
    assert r.status == 200
    assert r.chunked, r
    assert r.body == b"onetwothree"
    # On the wire: one chunk per yield, each written when the generator
    # produced it.
    with RawConn(srv.http_addr, timeout=20) as c:
        c.send(build_request("GET", "/", extra=[("Connection", "close")]))
        c.read_head()
        assert c._read_to_eof(time.monotonic() + 20) == \
            b"3\r\none\r\n3\r\ntwo\r\n5\r\nthree\r\n0\r\n\r\n"


@pytest.mark.parametrize("engine", ENGINES)
def test_generator_keep_alive_and_pipelined(spindle, engine):
    srv = serve(spindle, "generator.py", 4, engine)
    with RawConn(srv.http_addr, timeout=20) as c:
        for _ in range(3):
            c.send(build_request("GET", "/"))
            r = c.read_response()
            assert r.status == 200 and r.body == b"onetwothree", r
        c.send(build_request("GET", "/a") * 5)
        for _ in range(5):
            r = c.read_response()
            assert r.status == 200 and r.body == b"onetwothree", r


@pytest.mark.parametrize("engine", ENGINES)
def test_generator_50_concurrent(spindle, engine):
    srv = serve(spindle, "generator.py", 50, engine)
    out, wall = many(srv.http_addr, ["/?i=%d" % i for i in range(50)])
    assert [r.status for r in out] == [200] * 50
    assert [r.body for r in out] == [b"onetwothree"] * 50
    assert all(r.chunked for r in out)
    wait_until(lambda: len(srv.access_lines()) >= 50, 10, what="50 access lines")


# -- 4. a native tornado.web.Application beside the WSGI app ----------------

def tornado_ports(srv, n):
    """{worker_id: port} from the lines the app's postfork hook logs."""
    ms = srv.wait_for_log(TORNADO_LINE, count=n)
    return {int(m.group(1)): int(m.group(2)) for m in ms}


def check_native_app(srv, ports):
    workers = srv.worker_pids()
    assert sorted(ports) == [1, 2], ports
    assert sorted(workers) == [1, 2], workers
    # Each worker's Tornado app answers from that worker.
    for wid, port in ports.items():
        got = get_json("127.0.0.1:%d" % port, "/")
        assert got == {"kind": "tornado", "worker_id": wid, "pid": workers[wid]}, (got, workers)
        got = get_json("127.0.0.1:%d" % port, "/sleep?s=0.05")
        assert got["pid"] == workers[wid], got
    # The WSGI port answers too; the Tornado app of whichever worker served
    # it runs in the same process.
    for _ in range(6):
        w = get_json(srv.http_addr, "/ids")
        assert w["kind"] == "wsgi" and w["pid"] == workers[w["worker_id"]], (w, workers)
        assert w["tornado_port"] == ports[w["worker_id"]], (w, ports)
        t = get_json("127.0.0.1:%d" % w["tornado_port"], "/")
        assert t["pid"] == w["pid"], (t, w)


@pytest.mark.parametrize("engine", ENGINES)
def test_native_tornado_app_on_ephemeral_ports(spindle, engine):
    srv = serve(spindle, "web_app.py", 10, engine, "--processes", "2",
                env={"TORNADO_BASE_PORT": "0"})
    assert_engine(srv, engine)
    ports = tornado_ports(srv, 2)
    assert len(set(ports.values())) == 2, ports
    check_native_app(srv, ports)


@pytest.mark.parametrize("engine", ENGINES)
def test_wsgi_request_fetches_its_own_workers_tornado_app(spindle, engine):
    # Only possible if the Tornado app and the parked WSGI core share the loop.
    srv = serve(spindle, "web_app.py", 10, engine, "--processes", "2",
                env={"TORNADO_BASE_PORT": "0"})
    tornado_ports(srv, 2)
    for _ in range(4):
        got = get_json(srv.http_addr, "/via_tornado")
        assert got["tornado"]["kind"] == "tornado", got
        assert got["tornado"]["pid"] == got["wsgi"]["pid"], got


@pytest.mark.parametrize("engine", ENGINES)
def test_tornado_handlers_and_wsgi_at_once(spindle, engine):
    # Slow Tornado coroutines and WSGI requests interleave on one loop.
    srv = serve(spindle, "web_app.py", 10, engine, "--processes", "2",
                env={"TORNADO_BASE_PORT": "0"})
    ports = tornado_ports(srv, 2)
    paths = []
    with ThreadPoolExecutor(max_workers=30) as pool:
        t0 = time.monotonic()
        slow = [pool.submit(get, "127.0.0.1:%d" % ports[1 + i % 2], "/sleep?s=0.5")
                for i in range(10)]
        fast = [pool.submit(get, srv.http_addr, "/ids") for _ in range(20)]
        for f in slow + fast:
            r = f.result(30)
            assert r.status == 200, r
            paths.append(json.loads(r.body)["kind"])
        wall = time.monotonic() - t0
    assert paths.count("tornado") == 10 and paths.count("wsgi") == 20
    assert wall < 4, wall


def free_base_port(tries=20):
    """A port P such that P+1 and P+2 are free too (race-free enough: the
    server binds them moments later)."""
    for _ in range(tries):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + 2 > 65535:
            continue
        ok = True
        for p in (base + 1, base + 2):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    pytest.skip("no three consecutive free ports found")


@pytest.mark.parametrize("engine", ENGINES)
def test_native_tornado_app_on_base_port_plus_worker_id(spindle, engine):
    base = free_base_port()
    srv = serve(spindle, "web_app.py", 10, engine, "--processes", "2",
                env={"TORNADO_BASE_PORT": str(base)})
    ports = tornado_ports(srv, 2)
    assert ports == {1: base + 1, 2: base + 2}, (base, ports)
    check_native_app(srv, ports)


# -- concurrency: 100 parked fetches on one worker -------------------------

@pytest.mark.parametrize("app,engine", FETCH_PAIRS)
def test_100_concurrent_fetches_on_one_worker(spindle, app, engine):
    # The backend: a second spindle whose /backend parks 0.2 s per request.
    backend = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file",
                      example("tornado/fetch_wait.py"), "--async", "128", "--listen", "512",
                      extra=False, name="backend")
    front = serve(spindle, app, 100, engine, "--processes", "1", "--listen", "512",
                  env={"BACKEND_URL": backend.url + "/backend"}, name="front")
    got = get_json(front.http_addr, "/fetch?tag=warm&delay=0")
    assert got["body"] == "backend:warm", got
    paths = ["/fetch?delay=0.2&tag=c%d" % i for i in range(100)]
    out, wall = many(front.http_addr, paths, timeout=60)
    bodies = []
    for r in out:
        assert r.status == 200, (r, r.body)
        got = json.loads(r.body)
        assert got["code"] == 200, got
        bodies.append(got["body"])
    assert bodies == ["backend:c%d" % i for i in range(100)]
    # Serially that is 100 * 0.2 = 20 s.
    assert wall < 8, "100 fetches of 0.2 s took %.2fs on 100 cores" % wall
    pids = {json.loads(r.body)["pid"] for r in out}
    assert len(pids) == 1, pids


# -- failures and the life cycle around parked requests ----------------------

@pytest.mark.parametrize("app,engine", FETCH_PAIRS)
def test_failed_fetch_raises_where_the_request_waits(spindle, app, engine):
    srv = serve(spindle, app, 4, engine)
    got = get_json(srv.http_addr, "/fetch_raise?url=%s/no/such/route" % srv.url)
    assert got["error"] == "HTTPClientError" and got["code"] == 404, got
    # A bound socket that never listens refuses connections.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        got = get_json(srv.http_addr,
                       "/fetch_raise?url=http://127.0.0.1:%d/" % closed.getsockname()[1])
    assert got["error"] == "ConnectionRefusedError", got
    # The worker carries on.
    assert get_json(srv.http_addr, "/fetch?tag=after")["body"] == "backend:after"


@pytest.mark.parametrize("app,engine", FETCH_PAIRS)
def test_graceful_stop_lets_a_parked_request_finish(spindle, app, engine):
    srv = serve(spindle, app, 4, engine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        fut = pool.submit(get, srv.http_addr, "/fetch_timer?timer=1.5&tag=last", 30)
        # The fetch is done (its backend request was logged): the request now
        # sits parked on the IOLoop timer.
        wait_until(lambda: any('"GET /backend?tag=last' in l for l in srv.access_lines()), 10,
                   what="the backend request")
        srv.signal(signal.SIGTERM)
        r = fut.result(30)
    assert r.status == 200, r
    got = json.loads(r.body)
    assert got["body"] == "backend:last" and got["total_seconds"] >= 1.5, got
    assert srv.stop() == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_native_tornado_app_worker_stops_cleanly(spindle, engine):
    # The IOLoop also holds the Tornado app's listening sockets; a graceful
    # stop must still end the workers.
    srv = serve(spindle, "web_app.py", 10, engine, "--processes", "2",
                env={"TORNADO_BASE_PORT": "0"})
    ports = tornado_ports(srv, 2)
    get_json("127.0.0.1:%d" % ports[1], "/")
    pids = set(srv.worker_pids().values())
    t0 = time.monotonic()
    assert srv.stop() == 0
    assert time.monotonic() - t0 < 10
    assert not any(pid_alive(p) for p in pids)


@pytest.mark.parametrize("engine", ENGINES)
def test_respawned_worker_binds_its_tornado_port_again(spindle, engine):
    base = free_base_port()
    srv = serve(spindle, "web_app.py", 10, engine, "--processes", "2",
                env={"TORNADO_BASE_PORT": str(base)})
    ports = tornado_ports(srv, 2)
    old = srv.worker_pids()
    os.kill(old[1], signal.SIGKILL)
    wait_until(lambda: srv.worker_pids().get(1) not in (None, old[1]), 20,
               what="worker 1 respawned")
    tornado_ports(srv, 3)
    new = srv.worker_pids()
    # The new worker logs its line once it has bound the port.
    got = get_json("127.0.0.1:%d" % ports[1], "/")
    assert got["pid"] == new[1] != old[1], (got, old, new)
    assert get_json("127.0.0.1:%d" % ports[2], "/")["pid"] == old[2]


@pytest.mark.parametrize("engine", ENGINES)
def test_reload_starts_tornado_apps_in_the_new_workers(spindle, engine):
    srv = serve(spindle, "web_app.py", 10, engine, "--processes", "2",
                env={"TORNADO_BASE_PORT": "0"})
    tornado_ports(srv, 2)
    old = set(srv.worker_pids().values())
    srv.signal(signal.SIGHUP)
    wait_until(lambda: len(srv.ready_lines()) >= 4, 30, what="two new ready lines")
    ms = srv.wait_for_log(TORNADO_LINE, count=4)
    new = srv.worker_pids()
    assert not (set(new.values()) & old), (new, old)
    for m in ms[2:]:
        wid, port = int(m.group(1)), int(m.group(2))
        got = get_json("127.0.0.1:%d" % port, "/")
        assert got["pid"] == new[wid], (got, new)
    w = get_json(srv.http_addr, "/ids")
    assert w["pid"] in new.values(), (w, new)
    assert get_json("127.0.0.1:%d" % w["tornado_port"], "/")["pid"] == w["pid"]


@pytest.mark.slow
@pytest.mark.parametrize("app,engine", FETCH_PAIRS)
def test_harakiri_spares_requests_parked_on_the_ioloop(spindle, app, engine):
    # Parked on an IOLoop timer (greenlet style: switched to the loop by the
    # app itself) for longer than --harakiri: the worker is not stuck.
    srv = serve(spindle, app, 4, engine, "--harakiri", "1")
    pid = srv.worker_pids()[1]
    got = get_json(srv.http_addr, "/fetch_timer?timer=2.5&tag=h", timeout=30)
    assert got["body"] == "backend:h" and got["total_seconds"] >= 2.5, got
    assert "harakiri" not in srv.log_text()
    assert srv.worker_pids()[1] == pid
    # A request that really blocks the worker is killed.
    r = None
    try:
        r = get(srv.http_addr, "/block?s=4", timeout=30)
    except Exception:
        pass
    assert r is None or r.status != 200, r
    srv.wait_for_log(r"harakiri: worker 1 \(pid %d\)" % pid, timeout=20)
