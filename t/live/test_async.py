"""Async cores (--async N): thousands of parked requests on one worker, the
FIFO wait for a free core, fairness between a long generator and short
requests, slow clients, and the `spindle` module's waits: sleep,
wait_fd_read/wait_fd_write, suspend/resume, worker_id/core_id, postfork."""

import json
import resource
import selectors
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness import build_request, cores_in, example, http_request, wait_until


def async_cores(srv):
    """The core count the server runs with (the last --async/--tornado given
    wins, so SPINDLE_EXTRA_ARGS may change it)."""
    return cores_in(srv.args) or 1


def need_cores(srv, n):
    if async_cores(srv) < n:
        pytest.skip("SPINDLE_EXTRA_ARGS leaves %d async cores; this test needs %d"
                    % (async_cores(srv), n))


def get_json(srv, path, timeout=15.0, status=200):
    r = http_request(srv.http_addr, "GET", path, timeout=timeout)
    assert r.status == status, "GET %s: %r %r" % (path, r, r.body[:500])
    return json.loads(r.body)


def in_thread(fn, *args):
    """Run fn(*args) in a thread; returns a callable that joins it (bounded)
    and returns the result or raises what fn raised."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            box["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()

    def join(timeout=30.0):
        t.join(timeout)
        assert not t.is_alive(), "%s did not finish within %.0fs" % (fn.__name__, timeout)
        if "error" in box:
            raise box["error"]
        return box["value"]
    return join


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < need:
        pytest.skip("needs %d file descriptors, the hard limit is %d" % (need, hard))


def parse_close_delimited(raw):
    """(status, body) of a response read to EOF (sent with Connection: close)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, "no complete response head in %r" % raw[:200]
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            assert len(body) == int(value), "body %d bytes, Content-Length %s" % (len(body), value)
    return status, body


def fetch_concurrently(addr, paths, timeout):
    """One GET per path, each on its own connection, all open at once,
    driven by one selector. Returns a list of (status, body, error) in the
    order of paths; error is a string when the exchange failed."""
    host, port = addr.rsplit(":", 1)
    target = (host, int(port))
    sel = selectors.DefaultSelector()
    results = [None] * len(paths)
    pending = 0
    try:
        for i, path in enumerate(paths):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex(target)
            if err not in (0, 115):  # 115: EINPROGRESS
                s.close()
                results[i] = (None, b"", "connect: errno %d" % err)
                continue
            state = {"i": i, "out": build_request("GET", path, extra=[("Connection", "close")]),
                     "in": bytearray(), "connected": False}
            sel.register(s, selectors.EVENT_WRITE, state)
            pending += 1

        def finish(s, state, error=None):
            nonlocal pending
            sel.unregister(s)
            s.close()
            pending -= 1
            if error is None:
                try:
                    status, body = parse_close_delimited(bytes(state["in"]))
                    results[state["i"]] = (status, body, None)
                    return
                except (AssertionError, ValueError, IndexError) as e:
                    error = "bad response: %s" % e
            results[state["i"]] = (None, bytes(state["in"]), error)

        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for key, events in sel.select(timeout=max(0.01, min(1.0, deadline - time.monotonic()))):
                s, state = key.fileobj, key.data
                if events & selectors.EVENT_WRITE:
                    if not state["connected"]:
                        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            finish(s, state, "connect: errno %d" % err)
                            continue
                        state["connected"] = True
                    try:
                        n = s.send(state["out"])
                    except BlockingIOError:
                        continue
                    except OSError as e:
                        finish(s, state, "send: %r" % e)
                        continue
                    state["out"] = state["out"][n:]
                    if not state["out"]:
                        sel.modify(s, selectors.EVENT_READ, state)
                else:
                    try:
                        chunk = s.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError as e:
                        finish(s, state, "recv: %r" % e)
                        continue
                    if chunk:
                        state["in"] += chunk
                    else:
                        finish(s, state)
        for key in list(sel.get_map().values()):
            results[key.data["i"]] = (None, bytes(key.data["in"]),
                                      "no answer within %.0fs" % timeout)
            key.fileobj.close()
    finally:
        sel.close()
    return results


def sleeper(spindle, cores, *args, processes=1, env=None):
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("async/sleeper.py"),
                  "--processes", str(processes), "--async", str(cores), *args, env=env)
    return srv


# ---------------------------------------------------------------------------
# Many parked requests on one worker


@pytest.mark.slow
def test_2000_concurrent_sleepers_on_one_worker(spindle):
    n = 2000
    raise_fd_limit(2 * n + 200)  # the server inherits our limit: it holds n sockets too
    srv = sleeper(spindle, n, "--listen", "4096")
    need_cores(srv, n)
    paths = ["/sleep?s=0.5&tag=%d" % i for i in range(n)]
    t0 = time.monotonic()
    results = fetch_concurrently(srv.http_addr, paths, timeout=60)
    elapsed = time.monotonic() - t0

    failures = [(i, r) for i, r in enumerate(results) if r[2] is not None or r[0] != 200]
    assert not failures, "%d of %d failed, first: %r" % (len(failures), n, failures[:5])
    for i, (status, body, _) in enumerate(results):
        j = json.loads(body)
        assert j["tag"] == str(i), "request %d got the answer for %r" % (i, j["tag"])
        assert j["slept"] >= 0.45, j
        assert j["worker_id"] == 1
    # Serially this is 1,000 s; with every request parked at once it is the
    # sleep plus the time to connect 2,000 sockets.
    assert elapsed < 30, "2000 sleepers took %.1fs" % elapsed
    peak = get_json(srv, "/stats")["peak"]
    assert 50 <= peak <= n, "at most %d sleepers ran at once" % peak


def test_sleep_after_cpu_work_lasts_the_full_time(spindle):
    """A sleep that starts after the request kept the CPU busy still lasts
    as long as asked: its deadline counts from the moment sleep() is called,
    not from the start of the loop iteration that resumed the core."""
    srv = sleeper(spindle, 4)
    for busy in ("0.3", "0"):
        j = get_json(srv, "/sleep?s=0.5&busy=%s" % busy)
        assert j["slept"] >= 0.45, "spindle.sleep(0.5) after %ss of work slept %.3fs" % (
            busy, j["slept"])


def test_cores_bound_concurrency_and_waiters_queue_in_order(spindle):
    cores, n, nap = 4, 20, 0.5
    srv = sleeper(spindle, cores)
    need_cores(srv, cores)
    if async_cores(srv) != cores:
        pytest.skip("SPINDLE_EXTRA_ARGS changes --async")

    def one(i):
        return http_request(srv.http_addr, "GET", "/sleep?s=%s&tag=%d" % (nap, i), timeout=60)

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = []
        for i in range(n):
            futures.append(pool.submit(one, i))
            # Stagger the sends a little so that the order they reach the
            # server in is the order they were made in.
            time.sleep(0.03)
        done = [f.result(timeout=90) for f in futures]
    elapsed = time.monotonic() - t0

    answers = []
    for i, r in enumerate(done):
        assert r.status == 200, "request %d: %r %r (a waiter is never dropped)" % (i, r, r.body)
        j = json.loads(r.body)
        assert j["tag"] == str(i)
        answers.append(j)
    assert all(0 <= j["core_id"] < cores for j in answers), [j["core_id"] for j in answers]
    assert max(j["peak"] for j in answers) <= cores, "more requests ran at once than cores"
    assert get_json(srv, "/stats")["peak"] == cores, "all cores should have been busy at once"
    # n requests of `nap` seconds through `cores` cores cannot finish sooner
    # than n / cores naps, whatever the machine's speed.
    assert elapsed >= (n / cores) * nap * 0.9, "finished in %.2fs: too many ran at once" % elapsed
    # FIFO: a request starts in the order it arrived. Allow a neighbour swap
    # (two arrivals handled in one loop iteration on a loaded machine), not
    # more: a LIFO or unordered queue moves requests by many places.
    order = [j["seq"] for j in answers]
    moved = [(i, s - 1) for i, s in enumerate(order) if abs((s - 1) - i) > 2]
    assert not moved, "start order %s is not the arrival order" % order


def test_cores_are_freed_when_clients_leave(spindle):
    """Clients that hang up while their request is parked (or still waiting
    for a core) do not keep cores: later requests are served."""
    cores = 2
    srv = sleeper(spindle, cores)
    need_cores(srv, cores)
    for i in range(3 * cores):
        s = socket.create_connection((srv.host, srv.port), timeout=10)
        s.sendall(build_request("GET", "/sleep?s=0.5&tag=gone%d" % i))
        s.close()
    wait_until(lambda: get_json(srv, "/stats")["running"] == 0, 20, what="the cores to be freed")
    with ThreadPoolExecutor(max_workers=cores) as pool:
        got = list(pool.map(lambda i: get_json(srv, "/sleep?s=0.2&tag=after%d" % i, timeout=20),
                            range(2 * cores)))
    assert [j["tag"] for j in got] == ["after%d" % i for i in range(2 * cores)]
    assert get_json(srv, "/stats")["running"] == 0


def test_worker_id_and_core_id(spindle):
    srv = sleeper(spindle, 4, processes=2)
    cores = async_cores(srv)
    workers = srv.worker_pids()
    assert sorted(workers) == [1, 2]
    for _ in range(10):
        j = get_json(srv, "/ids")
        assert j["worker_id"] in workers
        assert workers[j["worker_id"]] == j["pid"], "worker_id %d is pid %d, log: %s" % (
            j["worker_id"], j["pid"], workers)
        assert isinstance(j["core_id"], int) and 0 <= j["core_id"] < cores
    # Concurrent requests on one worker run on distinct cores.
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda i: get_json(srv, "/sleep?s=0.5&tag=%d" % i), range(4)))
    by_worker = {}
    for j in got:
        assert 0 <= j["core_id"] < cores
        assert workers[j["worker_id"]] == j["pid"]
        by_worker.setdefault(j["worker_id"], []).append(j["core_id"])
    for w, ids in by_worker.items():
        if len(ids) <= cores:
            assert len(set(ids)) == len(ids), "worker %d ran two at once on one core: %s" % (w, ids)


def test_postfork_runs_in_each_worker(spindle, tmp_path):
    marks = tmp_path / "postfork"
    marks.mkdir()
    srv = sleeper(spindle, 4, processes=2, env={"POSTFORK_DIR": str(marks)})
    workers = srv.worker_pids()
    assert sorted(workers) == [1, 2]

    def all_marked():
        return all((marks / str(pid)).exists() for pid in workers.values())
    wait_until(all_marked, 10, what="a postfork mark from each worker")
    for wid, pid in workers.items():
        assert (marks / str(pid)).read_text().strip() == str(wid)
    assert srv.pid not in {int(p.name) for p in marks.iterdir()}, "postfork ran in the master"
    assert len(list(marks.iterdir())) == 2
    for _ in range(10):
        j = get_json(srv, "/ids")
        assert j["postfork"] == [{"pid": j["pid"], "worker_id": j["worker_id"]}], j


# ---------------------------------------------------------------------------
# Fairness: a long generator beside short requests


def stream_server(spindle, cores=4):
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("async/stream.py"),
                  "--processes", "1", "--async", str(cores))
    need_cores(srv, 2)
    return srv


def dechunk(raw):
    """The body of a chunked message read whole (index arithmetic, no copies
    per chunk, so 100,000 chunks decode quickly)."""
    out = []
    pos = 0
    for _ in range(10 ** 7):
        eol = raw.index(b"\r\n", pos)
        size = int(raw[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            return b"".join(out)
        out.append(raw[pos:pos + size])
        assert raw[pos + size:pos + size + 2] == b"\r\n", "chunk %d not followed by CRLF" % len(out)
        pos += size + 2
    raise AssertionError("too many chunks")


def read_all(sock, deadline, pace=None):
    """Bytes from sock until EOF; pace=(nbytes, seconds) pauses that long
    after every nbytes, to read slowly."""
    buf = bytearray()
    next_pause = pace[0] if pace else None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("response not complete by the deadline (%d bytes)" % len(buf))
        sock.settimeout(left)
        chunk = sock.recv(1 << 20)
        if not chunk:
            return bytes(buf)
        buf += chunk
        if pace and len(buf) >= next_pause:
            next_pause = len(buf) + pace[0]
            time.sleep(pace[1])


def check_counted_lines(body, n):
    expected = b"".join(b"%07d\n" % i for i in range(n))
    if body != expected:
        lines = body.split(b"\n")
        raise AssertionError("the %d-chunk body is wrong: %d bytes (want %d), %d lines, ends %r"
                             % (n, len(body), len(expected), len(lines), body[-40:]))


@pytest.mark.parametrize("reader", ["fast", "slow"])
def test_long_generator_does_not_starve_short_requests(spindle, reader):
    """/chunks yields 100,000 small chunks. With a fast reader the stream is
    limited by the CPU (the core never waits for the socket), so only the
    re-queueing after each chunk lets the short requests in; with a slow
    reader the core parks on a full socket as well."""
    n = 100000
    srv = stream_server(spindle)
    big = socket.create_connection((srv.host, srv.port), timeout=10)
    try:
        if reader == "slow":
            big.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        # Fast: busy work per chunk makes the app, not the client, the
        # bottleneck (a couple of seconds of streaming). Slow: a small
        # receive buffer read in pauses keeps the server's socket full.
        work = 1000 if reader == "fast" else 0
        big.sendall(build_request("GET", "/chunks?n=%d&work=%d" % (n, work),
                                  extra=[("Connection", "close")]))
        pace = (16384, 0.01) if reader == "slow" else None
        join = in_thread(read_all, big, time.monotonic() + 120, pace)

        wait_until(lambda: get_json(srv, "/hello")["chunks_active"], 15,
                   interval=0.01, what="the stream to start")
        during = []
        for _ in range(50):
            t0 = time.monotonic()
            j = get_json(srv, "/hello", timeout=30)
            took = time.monotonic() - t0
            assert took < 5, "a hello took %.2fs beside the stream" % took
            if not j["chunks_active"]:
                break
            during.append(j["chunks_sent"])
        raw = join(120)
    finally:
        big.close()
    assert during, "no short request was served while the %d-chunk stream ran" % n
    assert all(0 <= s < n for s in during), during
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), raw[:200]
    assert b"transfer-encoding: chunked" in head.lower(), head
    check_counted_lines(dechunk(body), n)


def test_a_chunk_goes_out_before_the_app_parks_for_the_next(spindle):
    """Chunks produced back to back may travel together, but one whose
    successor waits for something must not wait with it: /held yields a
    chunk, then parks until /release comes, which this client sends only
    once the first chunk has arrived (otherwise both sides would wait)."""
    srv = stream_server(spindle)
    with socket.create_connection((srv.host, srv.port), timeout=30) as c:
        c.sendall(build_request("GET", "/held", extra=[("Connection", "close")]))
        got = b""
        while b"first\n" not in got:
            part = c.recv(65536)
            assert part, "closed before the first chunk: %r" % got
            got += part
        assert b"second" not in got
        get_json(srv, "/release")
        got += read_all(c, time.monotonic() + 30)
    head, _, body = got.partition(b"\r\n\r\n")
    assert dechunk(body) == b"first\nsecond\n"


def test_slow_readers_park_only_their_own_cores(spindle):
    """Three clients that do not read a 32 MiB response hold three of four
    cores; the fourth keeps serving everyone else."""
    srv = stream_server(spindle, cores=4)
    size = 32 << 20
    slow = []
    try:
        for _ in range(3):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(10)
            s.connect((srv.host, srv.port))
            s.sendall(build_request("GET", "/large?mb=32", extra=[("Connection", "close")]))
            slow.append(s)
        wait_until(lambda: get_json(srv, "/hello")["large_active"] == 3, 15,
                   what="three large responses under way")

        def hello(_):
            t0 = time.monotonic()
            j = get_json(srv, "/hello", timeout=30)
            return time.monotonic() - t0, j
        for _ in range(10):
            took, j = hello(0)
            assert took < 5, "a hello took %.2fs beside slow readers" % took
            assert j["large_active"] == 3
        with ThreadPoolExecutor(max_workers=8) as pool:
            for took, j in pool.map(hello, range(16)):
                assert took < 5
        assert get_json(srv, "/hello")["large_active"] == 3, "a slow reader's response ended early"

        # A trickle: one byte at a time from the first reader, while the others wait.
        head = b""
        for _ in range(2000):
            head += slow[0].recv(1)
            if head.endswith(b"\r\n\r\n"):
                break
        assert head.startswith(b"HTTP/1.1 200"), head[:100]
        took, j = hello(0)
        assert took < 5 and j["large_active"] == 3

        # Now read everything: each response is complete and intact.
        joins = [in_thread(read_all, s, time.monotonic() + 120) for s in slow]
        bodies = [j(150) for j in joins]
    finally:
        for s in slow:
            s.close()
    assert bodies[0] == b"x" * size, len(bodies[0])
    for raw in bodies[1:]:
        h, _, b = raw.partition(b"\r\n\r\n")
        assert h.startswith(b"HTTP/1.1 200") and len(b) == size and b.count(b"x") == size
    wait_until(lambda: get_json(srv, "/hello")["large_active"] == 0, 10, what="the cores freed")


# ---------------------------------------------------------------------------
# Waiting for file descriptors; suspend and resume


@pytest.fixture
def rendezvous(spindle):
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("async/rendezvous.py"),
                  "--processes", "1", "--async", "8")
    need_cores(srv, 3)
    return srv


def test_wait_fd_read_wakes_when_another_request_writes(rendezvous):
    srv = rendezvous
    join = in_thread(get_json, srv, "/pipe_wait?key=p1&timeout=20", 30)
    wait_until(lambda: "p1" in get_json(srv, "/waiting")["pipes"], 15, what="the reader to park")
    assert get_json(srv, "/pipe_write?key=p1&data=hello")["written"] == 5
    j = join(30)
    assert j["ready"] is True and j["data"] == "hello", j
    assert j["waited"] < 15


def test_wait_fd_read_without_timeout_waits_for_data(rendezvous):
    srv = rendezvous
    join = in_thread(get_json, srv, "/pipe_wait?key=p2", 30)
    wait_until(lambda: "p2" in get_json(srv, "/waiting")["pipes"], 15, what="the reader to park")
    # still parked, not woken spuriously, while other requests come and go
    for _ in range(5):
        assert "p2" in get_json(srv, "/waiting")["pipes"]
    get_json(srv, "/pipe_write?key=p2&data=late")
    j = join(30)
    assert j["ready"] is True and j["data"] == "late", j


def test_wait_fd_read_times_out_with_false(rendezvous):
    srv = rendezvous
    t0 = time.monotonic()
    j = get_json(srv, "/pipe_wait?key=idle&timeout=0.3")
    assert j["ready"] is False and j["data"] == "", j
    assert j["waited"] >= 0.25
    assert time.monotonic() - t0 < 10


def test_wait_fd_write(rendezvous):
    j = get_json(rendezvous, "/socket_write?timeout=0.3")
    assert j["room"] is True and j["t_room"] < 5, j
    assert j["filled"] > 0
    assert j["full"] is False and j["t_full"] >= 0.25, "a full socket is not writable: %s" % j
    assert j["readable"] is True


def test_timeouts_of_several_waiters_are_independent(rendezvous):
    srv = rendezvous
    joins = [in_thread(get_json, srv, "/pipe_wait?key=t%d&timeout=%s" % (i, t), 30)
             for i, t in enumerate((0.2, 0.6, 20))]
    wait_until(lambda: "t2" in get_json(srv, "/waiting")["pipes"], 15, what="the third waiter")
    short, medium = joins[0](30), joins[1](30)
    assert short["ready"] is False and 0.15 <= short["waited"], short
    assert medium["ready"] is False and 0.5 <= medium["waited"], medium
    assert "t2" in get_json(srv, "/waiting")["pipes"], "the 20 s waiter woke with the others"
    get_json(srv, "/pipe_write?key=t2&data=z")
    j = joins[2](30)
    assert j["ready"] is True and j["data"] == "z"


def test_suspend_and_resume_between_two_requests(rendezvous):
    srv = rendezvous
    join = in_thread(get_json, srv, "/suspend?key=a", 30)
    # /resume answers 409 until the other request is parked in suspend()
    res = wait_until(lambda: (lambda r: r.status == 200 and json.loads(r.body))(
        http_request(srv.http_addr, "GET", "/resume?key=a")), 15, what="resume to find the waiter")
    a = join(30)
    assert res["ok"] is True, res
    assert res["target"] == a["core_id"]
    assert a["resumed_by"] == res["core_id"] != a["core_id"], (a, res)


def test_suspended_request_stays_parked_until_resumed(rendezvous):
    srv = rendezvous
    join = in_thread(get_json, srv, "/suspend?key=b", 30)
    wait_until(lambda: "b" in get_json(srv, "/waiting")["suspended"], 15, what="the suspend")
    # other requests, sleeps and timers do not wake it
    get_json(srv, "/pipe_wait?key=other&timeout=0.2")
    assert "b" in get_json(srv, "/waiting")["suspended"]
    res = get_json(srv, "/resume?key=b")
    assert res["ok"] is True
    assert join(30)["resumed_by"] == res["core_id"]


def test_resume_of_a_core_not_suspended_is_refused(rendezvous):
    srv = rendezvous
    cores = async_cores(srv)
    # a core that is idle, or the caller's own (running, not suspended)
    for core in (0, cores - 1):
        assert get_json(srv, "/resume_core?id=%d" % core)["ok"] is False
    # an id that is no core at all
    assert get_json(srv, "/resume_core?id=%d" % (cores + 100))["ok"] is False
    assert get_json(srv, "/resume_core?id=-1")["ok"] is False


def test_resume_does_not_cut_a_sleep_short(rendezvous):
    """resume() wakes a core parked in suspend() only: a core parked in
    sleep() keeps sleeping and resume() answers False."""
    srv = rendezvous
    join = in_thread(get_json, srv, "/sleep?key=s&s=1.0", 30)
    wait_until(lambda: "s" in get_json(srv, "/waiting")["sleeping"], 15, what="the sleeper")
    assert get_json(srv, "/resume_sleeper?key=s")["ok"] is False
    assert join(30)["slept"] >= 0.95
