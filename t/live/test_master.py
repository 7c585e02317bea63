"""The master: prefork workers, respawn, SIGHUP graceful reload under load,
SIGTERM/SIGINT graceful stop, max-requests recycling, harakiri."""

import os
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from harness import (HARAKIRI_RE, MAXREQ_RE, RESPAWN_RE, RawConn, build_request, example,
                     pid_alive, wait_until)


def probe_server(spindle, *args, processes=2):
    return spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("probe.py"),
                   "--processes", str(processes), *args)


def get_pid(srv, timeout=10):
    r = requests.get(srv.url + "/pid", timeout=timeout)
    assert r.status_code == 200
    return int(r.text)


class Load:
    """A few threads doing sequential requests, each on a new connection,
    until stopped (bounded by max_seconds)."""

    def __init__(self, url, threads=4, max_seconds=30):
        self.url = url
        self.stop_at = time.monotonic() + max_seconds
        self.stopped = threading.Event()
        self.ok = 0
        self.failures = []
        self.pids = set()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self):
        while not self.stopped.is_set() and time.monotonic() < self.stop_at:
            try:
                r = requests.get(self.url, timeout=20, headers={"Connection": "close"})
                if r.status_code != 200:
                    raise AssertionError("status %d: %r" % (r.status_code, r.text[:200]))
                with self.lock:
                    self.ok += 1
                    self.pids.add(int(r.text))
            except Exception as e:  # noqa: BLE001
                with self.lock:
                    self.failures.append(repr(e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def wait_ok(self, n, timeout=20):
        wait_until(lambda: self.ok >= n or self.failures, timeout, what="%d requests" % n)

    def __exit__(self, *exc):
        self.stopped.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads)


def test_prefork_workers_numbered_and_distinct(spindle):
    s = probe_server(spindle, processes=3)
    pids = s.worker_pids()
    assert sorted(pids) == [1, 2, 3]
    assert len(set(pids.values())) == 3
    assert s.pid not in pids.values()
    for p in pids.values():
        assert pid_alive(p)
        with open("/proc/%d/stat" % p) as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        assert ppid == s.pid, "worker %d is not a child of the master" % p
    # the bound line comes from the master before any worker is ready
    text = s.log_text()
    assert text.index("bound http-socket") < text.index(") ready")
    served = {get_pid(s) for _ in range(30)}
    assert served <= set(pids.values())


def test_worker_killed_is_respawned(spindle):
    s = probe_server(spindle)
    before = s.worker_pids()
    victim_id, victim = 1, before[1]
    os.kill(victim, signal.SIGKILL)
    m = s.wait_for_log(r"worker 1 \(pid %d\) killed by signal 9 \(\w+\); respawning" % victim)
    assert RESPAWN_RE.search(m[0].group(0))
    wait_until(lambda: s.worker_pids()[victim_id] != victim, 20, what="new ready line")
    new = s.worker_pids()[victim_id]
    assert new != victim and pid_alive(new)
    assert s.worker_pids()[2] == before[2]
    for _ in range(20):
        assert get_pid(s) in s.worker_pids().values()
    wait_until(lambda: not pid_alive(victim), 10, what="old worker reaped")


def test_worker_exit_is_respawned(spindle, tmp_path):
    app = tmp_path / "exiter.py"
    app.write_text(
        "import os\n"
        "def application(environ, start_response):\n"
        "    if environ['PATH_INFO'] == '/exit':\n"
        "        os._exit(3)\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [str(os.getpid()).encode()]\n")
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", str(app), "--processes", "1")
    old = s.worker_pids()[1]
    try:
        requests.get(s.url + "/exit", timeout=10)
    except requests.RequestException:
        pass  # the worker died under the request
    s.wait_for_log(r"worker 1 \(pid %d\) exited with status 3; respawning" % old)
    wait_until(lambda: s.worker_pids()[1] != old, 20, what="respawned worker")
    r = requests.get(s.url + "/", timeout=10)
    assert r.status_code == 200 and int(r.text) == s.worker_pids()[1]


def test_sighup_reload_under_load_loses_nothing(spindle):
    s = probe_server(spindle)
    old = set(s.worker_pids().values())
    with Load(s.url + "/pid", threads=4) as load:
        load.wait_ok(20)
        s.signal(signal.SIGHUP)
        wait_until(lambda: len(s.ready_lines()) >= 4, 20, what="new ready lines after SIGHUP")
        load.wait_ok(load.ok + 20)
        s.signal(signal.SIGHUP)
        wait_until(lambda: len(s.ready_lines()) >= 6, 20, what="ready lines after 2nd SIGHUP")
        load.wait_ok(load.ok + 20)
    assert load.failures == [], "%d failed of %d: %s" % (len(load.failures), load.ok,
                                                        load.failures[:5])
    new = set(s.worker_pids().values())
    assert new.isdisjoint(old), "reload must replace every worker"
    assert load.pids & new, "requests must reach the new workers"
    # old workers finish and go away
    wait_until(lambda: not any(pid_alive(p) for p in old), 20, what="old workers exit")
    assert s.alive() and s.pid == s.proc.pid


def test_sighup_lets_inflight_request_finish(spindle):
    s = probe_server(spindle, processes=1)
    old = s.worker_pids()[1]
    result = {}

    def slow():
        try:
            result["r"] = requests.get(s.url + "/sleep", params={"s": "2", "token": "hup1"}, timeout=30)
        except Exception as e:  # noqa: BLE001
            result["e"] = e
    t = threading.Thread(target=slow)
    t.start()
    s.wait_for_log(r"sleep start hup1")
    s.signal(signal.SIGHUP)
    t.join(30)
    assert "e" not in result, result.get("e")
    assert result["r"].status_code == 200
    assert result["r"].text.startswith("slept 2.0 in %d" % old)
    wait_until(lambda: s.worker_pids()[1] != old, 20, what="new worker")
    assert get_pid(s) == s.worker_pids()[1]


def test_worker_told_to_stop_takes_no_new_connection(spindle):
    """The old worker's stop signal and a new connection reach it in the same
    loop iteration: it must leave the connection to the new generation.
    Both workers are held with SIGSTOP so the two events are pending together
    when the old one runs again."""
    s = probe_server(spindle, processes=1)
    old = s.worker_pids()[1]
    os.kill(old, signal.SIGSTOP)
    try:
        s.signal(signal.SIGHUP)  # the new master sends the old worker SIGTERM
        wait_until(lambda: s.worker_pids()[1] != old, 30, what="new worker")
        new = s.worker_pids()[1]
        os.kill(new, signal.SIGSTOP)
        result = {}

        def fetch():
            try:
                result["pid"] = get_pid(s, timeout=30)
            except Exception as e:  # noqa: BLE001
                result["e"] = e
        t = threading.Thread(target=fetch)
        t.start()
        # The request is in the listen queue once the connection is accepted
        # by the kernel; give the client a moment to connect and send.
        wait_until(lambda: _queued_connections(s) > 0, 10, what="queued connection")
        os.kill(old, signal.SIGCONT)
        wait_until(lambda: not pid_alive(old), 20, what="old worker gone")
    finally:
        os.kill(old, signal.SIGCONT) if pid_alive(old) else None
        for p in s.worker_pids().values():
            if pid_alive(p):
                os.kill(p, signal.SIGCONT)
    t.join(30)
    assert "e" not in result, result.get("e")
    assert result["pid"] == new


def _queued_connections(s):
    """Connections waiting in the listening socket's accept queue (ss -lnt
    reports them as Recv-Q)."""
    port = int(s.http_addr.rsplit(":", 1)[1])
    out = subprocess.run(["ss", "-Hlnt", "sport = :%d" % port], capture_output=True,
                         text=True).stdout.split()
    return int(out[1]) if len(out) > 1 else 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_stop_finishes_inflight_and_exits_0(spindle, sig):
    s = probe_server(spindle, processes=1)
    workers = set(s.worker_pids().values())
    conn = RawConn(s.http_addr, timeout=30)
    conn.send(build_request("GET", "/sleep?s=2&token=term1", [("Connection", "close")]))
    s.wait_for_log(r"sleep start term1")
    s.signal(sig)
    r = conn.read_response(timeout=30)
    conn.close()
    try:
        s.proc.wait(30)
    except subprocess.TimeoutExpired:
        pass
    assert r.status == 200 and r.body.startswith(b"slept 2.0")
    assert s.proc.returncode == 0, "graceful stop must exit 0, got %r" % s.proc.returncode
    for p in workers:
        wait_until(lambda: not pid_alive(p), 10, what="worker %d gone" % p)
    # and the listening socket is closed
    with pytest.raises(OSError):
        RawConn(s.http_addr, timeout=2).close()


def test_worker_reload_mercy_bounds_graceful_stop(spindle):
    s = probe_server(spindle, "--worker-reload-mercy", "2", processes=1)
    worker = s.worker_pids()[1]
    conn = RawConn(s.http_addr, timeout=30)
    conn.send(build_request("GET", "/sleep?s=30&token=mercy1", [("Connection", "close")]))
    s.wait_for_log(r"sleep start mercy1")
    t0 = time.monotonic()
    s.signal(signal.SIGTERM)
    try:
        s.proc.wait(20)
    except subprocess.TimeoutExpired:
        pass
    elapsed = time.monotonic() - t0
    conn.close()
    assert s.proc.returncode is not None, "master still running 20s after SIGTERM (mercy 2s)"
    assert elapsed < 20
    wait_until(lambda: not pid_alive(worker), 10, what="stuck worker gone")


def test_busy_worker_queues_connections_instead_of_dropping(spindle):
    s = probe_server(spindle, processes=1)
    results = []
    lock = threading.Lock()

    def go(i):
        try:
            r = requests.get(s.url + "/sleep", params={"s": "0.2", "token": "q%d" % i},
                             timeout=30)
            with lock:
                results.append(r.status_code)
        except Exception as e:  # noqa: BLE001
            with lock:
                results.append(repr(e))
    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    assert results == [200] * 8


def test_sigterm_idle_server_exits_promptly(spindle):
    s = probe_server(spindle)
    workers = set(s.worker_pids().values())
    t0 = time.monotonic()
    rc = s.stop(signal.SIGTERM, timeout=20)
    assert rc == 0
    assert time.monotonic() - t0 < 20
    for p in workers:
        wait_until(lambda: not pid_alive(p), 10, what="worker %d gone" % p)


def test_max_requests_recycles_worker(spindle):
    s = probe_server(spindle, "--max-requests", "5", processes=1)
    first = s.worker_pids()[1]
    seen = []
    for i in range(17):
        r = requests.get(s.url + "/whoami", timeout=15, headers={"Connection": "close"})
        assert r.status_code == 200, "request %d failed: %s" % (i, r.status_code)
        seen.append(r.json()["pid"])
    assert seen[0] == first
    distinct = list(dict.fromkeys(seen))
    assert len(distinct) >= 3, "after 17 requests with max-requests 5 expected >=3 pids: %s" % seen
    # no worker serves more than 5
    for p in distinct:
        assert seen.count(p) <= 5, seen
    s.wait_for_log(r"worker 1 \(pid %d\) reached max-requests" % first)
    assert MAXREQ_RE.search(s.log_text())


def test_max_requests_with_keepalive_clients(spindle):
    s = probe_server(spindle, "--max-requests", "3", processes=1)
    ok = 0
    pids = set()
    for _ in range(4):
        with requests.Session() as sess:
            for _ in range(3):
                r = sess.get(s.url + "/whoami", timeout=15)
                assert r.status_code == 200
                pids.add(r.json()["pid"])
                ok += 1
    assert ok == 12 and len(pids) >= 2


def test_harakiri_kills_stuck_worker(spindle):
    s = probe_server(spindle, "--harakiri", "2", processes=1)
    old = s.worker_pids()[1]
    conn = RawConn(s.http_addr, timeout=30)
    conn.send(build_request("GET", "/stuck", [("Connection", "close")]))
    m = s.wait_for_log(r"harakiri: worker 1 \(pid %d\) stuck [\d.]+s in \"(.*)\"" % old,
                       timeout=20)
    assert HARAKIRI_RE.search(m[0].group(0))
    # the client of the stuck request gets an error or a closed connection, never a 200
    assert conn.wait_closed(20)
    assert not conn.buf.startswith(b"HTTP/1.1 200")
    conn.close()
    wait_until(lambda: s.worker_pids()[1] != old, 20, what="replacement worker")
    new = s.worker_pids()[1]
    assert get_pid(s, timeout=15) == new
    wait_until(lambda: not pid_alive(old), 10, what="stuck worker gone")
    # the line names what was stuck
    assert "/stuck" in m[0].group(1), "harakiri line does not name the request: %r" % (
        m[0].group(0))


def test_harakiri_spares_quick_requests(spindle):
    s = probe_server(spindle, "--harakiri", "3", processes=1)
    old = s.worker_pids()[1]
    for _ in range(5):
        r = requests.get(s.url + "/sleep", params={"s": "0.2"}, timeout=10)
        assert r.status_code == 200
    assert s.worker_pids()[1] == old
    assert "harakiri:" not in s.log_text()


def test_requests_survive_worker_crash_of_another(spindle):
    s = probe_server(spindle, processes=2)
    with Load(s.url + "/pid", threads=2, max_seconds=20) as load:
        load.wait_ok(10)
        os.kill(s.worker_pids()[2], signal.SIGKILL)
        s.wait_for_log(r"worker 2 .*respawning")
        wait_until(lambda: len(s.ready_lines()) >= 3, 20, what="respawn ready line")
        load.wait_ok(load.ok + 10)
    # a request inside the killed worker may legitimately fail; no more than
    # the number of client threads
    assert len(load.failures) <= 2, load.failures


def _server_has_read(server_port, client_port):
    """True once the server's end of the connection from client_port has no
    unread bytes (/proc/net/tcp rx_queue is 0): the worker took the request."""
    want_local = ":%04X" % server_port
    want_remote = ":%04X" % client_port
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(want_local) and fields[2].endswith(want_remote):
                return int(fields[4].split(":")[1], 16) == 0
    return False


def test_sigterm_answers_every_request_still_held_past_the_mercy(spindle, tmp_path):
    # Nobody ever resumes these requests: the graceful stop must neither wait
    # for them for ever nor drop them. Parked ones are woken with
    # spindle.Cancelled (500); queued ones, behind the 2 busy cores, are
    # answered 503 instead of being started and cut off.
    app = tmp_path / "parked_forever.py"
    app.write_text(
        "import spindle\n"
        "def application(environ, start_response):\n"
        "    environ['wsgi.errors'].write('parked for good\\n')\n"
        "    spindle.suspend()\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'resumed']\n")
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", str(app), "--async", "2",
                "--worker-reload-mercy", "1", processes=1, extra=False)
    conns = []
    for i in range(4):
        c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        conns.append(c)
        if i < 2:
            s.wait_for_log(r"parked for good", timeout=15, count=i + 1)
    deadline = time.monotonic() + 15
    while not all(_server_has_read(s.port, c.getsockname()[1]) for c in conns[2:]):
        assert time.monotonic() < deadline, "the queued requests never reached the worker"
        time.sleep(0.02)
    t0 = time.monotonic()
    rc = s.stop(signal.SIGTERM, timeout=25)
    assert rc == 0
    assert time.monotonic() - t0 < 15
    statuses = []
    for c in conns:
        data = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        c.close()
        statuses.append(int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else data)
    assert sorted(statuses, key=str) == [500, 500, 503, 503], statuses
    assert "cancelling" in s.log_text()
    assert "Cancelled" in s.log_text()
