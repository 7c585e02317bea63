"""`spindle top ADDR`: the live terminal view, driven through a real
terminal (tmux: send-keys to type, capture-pane to read the screen)."""

import os
import re
import signal
import shutil
import subprocess

import pytest
import requests

from harness import RawConn, build_request, example, run_spindle, spindle_bin, wait_until

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    """A private tmux server (its own socket), killed at the end."""

    def __init__(self, tmp_path):
        self.sock = str(tmp_path / "tmux.sock")

    def run(self, *args, check=True):
        return subprocess.run(["tmux", "-S", self.sock] + list(args), capture_output=True,
                              text=True, timeout=10, check=check)

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "top").stdout

    def close(self):
        self.run("kill-server", check=False)


def stats_server(spindle, *extra):
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("probe.py"),
                  "--processes", "2", "--async", "4", *extra, extra=False)
    addr = srv.wait_for_log(r"bound stats (\S+)", timeout=5)[0].group(1)
    return srv, addr


def test_top_shows_workers_cores_and_refreshes_until_q(spindle, tmp_path):
    srv, addr = stats_server(spindle, "--stats", "127.0.0.1:0")
    for _ in range(3):
        requests.get(srv.url + "/pid", timeout=10)
    parked = RawConn(srv.http_addr, timeout=30)
    parked.send(build_request("GET", "/spindle_sleep?s=8", [("Connection", "close")]))
    tmux = Tmux(tmp_path)
    try:
        tmux.run("new-session", "-d", "-s", "top", "-x", "150", "-y", "30",
                 "%s top %s; echo top-exited-$?; sleep 60" % (spindle_bin(), addr))
        def shown():
            s = tmux.screen()
            return s if "GET /spindle_sleep?s=8 HTTP/1.1" in s and "requests 3 " in s else None
        screen = wait_until(shown, 15, what="the parked request and 3 requests on the screen")
        # both workers, by pid, and the parked core with what it waits on
        for pid in srv.worker_pids().values():
            assert re.search(r"^\s+\d\s+%d\s+(idle|busy)" % pid, screen, re.M), screen
        assert re.search(r"^\d:\d\s+timer\s+[\d.]+s\s+GET /spindle_sleep", screen, re.M), screen
        # it refreshes by itself: new requests show up without a key press
        for _ in range(4):
            requests.get(srv.url + "/pid", timeout=10)
        wait_until(lambda: "requests 7 " in tmux.screen(), 10, what="the next frame")
        tmux.run("send-keys", "-t", "top", "q")
        wait_until(lambda: "top-exited-0" in tmux.screen(), 10, what="top to quit on q")
    finally:
        tmux.close()
        parked.close()


def test_top_once_over_http_and_bad_arguments(spindle, tmp_path):
    srv, addr = stats_server(spindle, "--stats", "127.0.0.1:0", "--stats-http")
    requests.get(srv.url + "/pid", timeout=10)
    # A worker counts a request just after its client has the answer: poll.
    def frame():
        rc, out, err = run_spindle(["top", "http://%s/" % addr, "--once"], tmp_path)
        assert rc == 0, err
        return out if "requests 1 " in out else None
    out = wait_until(frame, 10, what="the request counted")
    assert "master pid %d" % srv.pid in out, out
    rc, out, err = run_spindle(["top"], tmp_path)
    assert rc == 2 and "usage: spindle top ADDR" in err
    # nothing listening there: says so, exits non-zero
    rc, out, err = run_spindle(["top", str(tmp_path / "no.sock"), "--once"], tmp_path)
    assert rc == 1 and "cannot read the stats" in out


UWSGI = shutil.which("uwsgi")
UWSGI_PY = "/usr/lib/uwsgi/plugins/python3_plugin.so"


@pytest.mark.skipif(not UWSGI or not os.path.exists(UWSGI_PY),
                    reason="uWSGI and its python3 plugin are not installed (make deps-bench)")
def test_top_reads_uwsgi_stats_too(tmp_path):
    """The same view works against uWSGI's own stats server."""
    stats = str(tmp_path / "uwsgi-stats.sock")
    log = open(tmp_path / "uwsgi.log", "wb")
    proc = subprocess.Popen([UWSGI, "--plugin", "python3", "--http-socket", "127.0.0.1:0",
                             "--wsgi-file", example("probe.py"), "--master", "--processes", "2",
                             "--stats", stats], cwd=str(tmp_path), stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: os.path.exists(stats), 20, what="uWSGI's stats socket")

        def frame():
            rc, out, _ = run_spindle(["top", stats, "--once"], tmp_path)
            return out if rc == 0 and len(re.findall(r"^\s+\d\s+\d+\s+idle", out, re.M)) == 2 \
                else None
        out = wait_until(frame, 20, what="both uWSGI workers in spindle top")
        assert "master pid %d" % proc.pid in out, out
    finally:
        proc.send_signal(signal.SIGINT)  # uWSGI 2.0 reloads on SIGTERM
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
