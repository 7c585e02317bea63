"""Reloads lose nothing: keep-alive clients that send requests back to back
on one connection while the server reloads (SIGHUP) or replaces its workers
one by one (--lazy-apps).

A client reconnects only after a response that said `Connection: close`,
followed by a clean end of stream. Anything else is a lost request: a
connection reset, an end of stream where a response should be, a close
after a response that promised keep-alive, or no answer at all.
"""

import os
import signal
import threading
import time

import pytest

from harness import (ConnectionClosed, RawConn, build_request, example, pairing_args,
                     pairing_names, pid_alive, wait_until)

APP = example("probe.py")


class KeepAliveClients:
    """n threads, each with one keep-alive connection, sending requests back
    to back until stopped (bounded by max_seconds)."""

    def __init__(self, addr, n=8, max_seconds=120):
        self.addr = addr
        self.stop_at = time.monotonic() + max_seconds
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.closes = 0  # clean closes after a Connection: close answer
        self.failures = []
        self.pids = set()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(n)]

    def fail(self, what):
        with self.lock:
            self.failures.append(what)

    def run(self):
        conn = None
        while not self.stopped.is_set() and time.monotonic() < self.stop_at:
            if conn is None:
                try:
                    conn = RawConn(self.addr, timeout=30)
                    served = 0
                except OSError as e:
                    self.fail("connect: %r" % e)
                    return
            try:
                conn.send(build_request("GET", "/pid"))
                r = conn.read_response(timeout=30)
            except (ConnectionClosed, OSError) as e:
                self.fail("request %d of its connection lost: %r" % (served + 1, e))
                conn.close()
                conn = None
                continue
            served += 1
            if r.status != 200:
                self.fail("status %d: %r" % (r.status, r.body[:200]))
            with self.lock:
                self.ok += 1
                self.pids.add(int(r.body))
            if (r.header("Connection") or "").lower() == "close":
                # The server says it closes: the stream must end cleanly.
                try:
                    conn.sock.settimeout(30)
                    rest = conn.buf + conn.sock.recv(65536)
                    if rest:
                        self.fail("bytes after a Connection: close answer: %r" % rest[:100])
                    else:
                        with self.lock:
                            self.closes += 1
                except ConnectionResetError:
                    self.fail("reset after a Connection: close answer")
                except OSError as e:
                    self.fail("after a Connection: close answer: %r" % e)
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def wait_ok(self, n, timeout=60):
        wait_until(lambda: self.ok >= n or self.failures, timeout, what="%d answers" % n)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        for t in self.threads:
            t.join(60)
        assert not any(t.is_alive() for t in self.threads)


def reload_and_wait(s, processes):
    """SIGHUP the master; returns once every worker id has a new pid and the
    old workers have exited."""
    old = set(s.worker_pids().values())
    s.signal(signal.SIGHUP)
    wait_until(lambda: len(s.worker_pids()) == processes
               and old.isdisjoint(s.worker_pids().values())
               and not any(pid_alive(p) for p in old),
               60, interval=0.05, what="new workers after SIGHUP, the old ones gone")


def run_reloads(spindle, engine_args, more, reloads=3, processes=2):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--processes",
                str(processes), *engine_args, *more, extra=not engine_args)
    with KeepAliveClients(s.http_addr) as load:
        load.wait_ok(40)
        for _ in range(reloads):
            reload_and_wait(s, processes)
            load.wait_ok(load.ok + 40)
    assert load.failures == [], "%d lost of %d answered: %s" % (
        len(load.failures), load.ok, load.failures[:5])
    assert load.pids & set(s.worker_pids().values()), "the new workers answered nothing"
    assert load.closes > 0, "no connection was closed by a reload"
    return s, load


@pytest.mark.slow
@pytest.mark.parametrize("pairing", pairing_names())
def test_sighup_under_keepalive_load_loses_no_request(spindle, pairing):
    run_reloads(spindle, pairing_args(pairing, 8), [])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["lazy-apps", "threads"])
def test_worker_replacement_under_keepalive_load_loses_no_request(spindle, mode):
    more = {"lazy-apps": ["--lazy-apps"], "threads": ["--threads", "2"]}[mode]
    run_reloads(spindle, [], more)


def signal_pending(pid, sig):
    """True once sig waits, blocked, for process pid (/proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("ShdPnd:"):
                return bool(int(line.split()[1], 16) & (1 << (sig - 1)))
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_stop_answers_a_request_already_in_an_idle_connection(spindle, sig):
    """The stop reaches the worker while a keep-alive connection between two
    requests already holds its next one, unread: that request is answered,
    and the stream ends cleanly (it was closed with unread bytes: a reset
    and no answer). The worker is held with SIGSTOP so that the stop and
    the request are both pending when it runs again."""
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--processes", "1")
    worker = s.worker_pids()[1]
    with RawConn(s.http_addr, timeout=20) as c:
        c.send(build_request("GET", "/pid"))
        assert c.read_response().status == 200
        os.kill(worker, signal.SIGSTOP)
        try:
            # The request first, then the stop (which the master passes on
            # as SIGTERM): both are ready when the worker runs again.
            c.send(build_request("GET", "/pid"))
            s.signal(sig)
            wait_until(lambda: signal_pending(worker, signal.SIGTERM), 20,
                       what="the stop pending in the worker")
        finally:
            os.kill(worker, signal.SIGCONT)
        r = c.read_response(timeout=20)
        assert r.status == 200 and int(r.body) == worker
        if (r.header("Connection") or "").lower() != "close":
            # Served before the worker saw its stop: then the idle close.
            with pytest.raises(ConnectionClosed):
                c.read_response(timeout=20)
        c.sock.settimeout(20)
        assert c.sock.recv(100) == b"", "a clean end of stream"
    s.proc.wait(30)
    assert s.proc.returncode == 0


def test_idle_keepalive_connection_is_closed_by_a_stop(spindle):
    """An idle connection that stays idle does not hold a stop."""
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--processes", "1",
                "--worker-reload-mercy", "30")
    with RawConn(s.http_addr, timeout=20) as c:
        c.send(build_request("GET", "/pid"))
        assert c.read_response().status == 200
        t0 = time.monotonic()
        s.signal(signal.SIGTERM)
        assert c.wait_closed(15)
        s.proc.wait(15)
        assert time.monotonic() - t0 < 10
    assert s.proc.returncode == 0


def server_has_read(server_port, client_port):
    """True once the server's end of the connection from client_port holds no
    unread bytes (/proc/net/tcp rx_queue 0)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if (fields[1].endswith(":%04X" % server_port)
                    and fields[2].endswith(":%04X" % client_port)):
                return int(fields[4].split(":")[1], 16) == 0
    return False


def test_stop_lets_a_keepalive_request_in_flight_finish_with_connection_close(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", APP, "--processes", "1")
    with RawConn(s.http_addr, timeout=20) as c:
        c.send(build_request("GET", "/pid"))
        assert c.read_response().status == 200
        # A request parked in the app (spindle.sleep) when the stop comes.
        c.send(build_request("GET", "/spindle_sleep?s=1.5"))
        wait_until(lambda: server_has_read(s.port, c.local_port()), 10,
                   what="the worker took the request")
        s.signal(signal.SIGTERM)
        r = c.read_response(timeout=20)
        assert r.status == 200 and b"slept" in r.body, r
        assert (r.header("Connection") or "").lower() == "close", r.headers
        c.sock.settimeout(20)
        assert c.sock.recv(100) == b"", "a clean end of stream after Connection: close"
    s.proc.wait(30)
    assert s.proc.returncode == 0
