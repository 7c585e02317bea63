"""Deployments moved from uWSGI: the ini files of examples/deploy/ started
as they are, sockets with their owners and modes, the change of user, the
pidfile, --vacuum, log files (and a daemon's log after logrotate), and
addresses refused before anything binds."""

import os
import pwd
import re
import shutil
import signal
import subprocess

import pytest
import requests

import nginx_front
from harness import RawConn, build_request, example, run_spindle, wait_until

AS_ROOT = os.geteuid() == 0


def read_pid(path):
    with open(path) as f:
        return int(f.read().strip())


def process_user(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return pwd.getpwuid(int(line.split()[1])).pw_name
    return None


@pytest.mark.parametrize("addr", ["127.0.0.1:99999", ":65536", "[::1]:123456", "127.0.0.1:x"])
def test_port_out_of_range_exits_2(tmp_path, addr):
    for opt in ("--http-socket", "--socket", "--http"):
        rc, out, err = run_spindle([opt, addr, "--wsgi-file", example("hello.py")], tmp_path)
        assert rc == 2, (opt, addr, err)
        lines = [l for l in err.splitlines() if l.strip()]
        assert len(lines) == 1 and addr in lines[0] and "65535" in lines[0], lines


SERVERS = """\
    server {
        listen unix:{d}/nginx.sock;
        location / {
            include {params};
            uwsgi_pass unix:@SOCK@;
        }
    }
"""


@pytest.mark.skipif(not AS_ROOT, reason="changing user needs root")
def test_django_behind_nginx_as_www_data(spindle, tmp_path):
    """examples/deploy/django_nginx.ini unchanged: a unix socket owned by
    www-data with mode 660, the master and workers running as www-data, a
    pidfile, nginx's workers (www-data) in front; --vacuum removes the socket
    and the pidfile at exit."""
    # www-data must be able to reach the run directory (pytest's own
    # directories are private to root).
    import pathlib
    import tempfile
    run = pathlib.Path(tempfile.mkdtemp(prefix="spindle-run-", dir="/tmp"))
    os.chmod(run, 0o755)
    shutil.chown(run, "www-data", "www-data")
    try:
        django_behind_nginx(spindle, tmp_path, run)
    finally:
        shutil.rmtree(run, ignore_errors=True)


def django_behind_nginx(spindle, tmp_path, run):
    s = spindle("--ini", example("deploy/django_nginx.ini"), processes=2,
                env={"RUN_DIR": str(run)}, extra=False)
    sock = run / "site.sock"
    st = os.stat(sock)
    assert oct(st.st_mode & 0o777) == "0o660"
    assert pwd.getpwuid(st.st_uid).pw_name == "www-data"
    pid = read_pid(run / "site.pid")
    assert pid == s.pid
    assert process_user(pid) == "www-data"
    for _, wpid in s.worker_pids().items():
        assert process_user(wpid) == "www-data"

    ngx_dir = run / "nginx"
    ngx_dir.mkdir()
    servers = SERVERS.replace("@SOCK@", str(sock))
    with nginx_front.running(ngx_dir, servers, ["nginx.sock"], user="www-data",
                             connections=64) as proc:
        with RawConn(str(ngx_dir / "nginx.sock"), 15) as c:
            c.send(build_request("GET", "/items/7/", extra=[("Connection", "close")]))
            r = c.read_response("GET")
        assert r.status == 200, (r, nginx_front.logs(ngx_dir))
        assert b"7" in r.body
        # nginx's worker, not root, made the connection.
        workers = subprocess.run(["ps", "-o", "user=", "--ppid", str(proc.pid)],
                                 capture_output=True, text=True).stdout.split()
        assert workers and set(workers) == {"www-data"}
    s.stop()
    assert not os.path.exists(sock)
    assert not os.path.exists(run / "site.pid")


def test_container_file_from_environment(spindle, tmp_path):
    """examples/deploy/container.ini: the port from $(PORT), defaults with
    $(VAR:-default), and UWSGI_PROCESSES overriding the file."""
    import socket
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    s = spindle("--ini", example("deploy/container.ini"), processes=2,
                env={"PORT": str(port), "UWSGI_PROCESSES": "2", "APP_ENV": "ci"}, extra=False)
    assert s.port == port
    assert sorted(s.worker_pids()) == [1, 2]
    r = requests.get("http://127.0.0.1:%d/" % port, timeout=10)
    assert r.status_code == 200
    assert "--need-app" in s.log_text() and "no effect here" in s.log_text()


@pytest.mark.parametrize("deploy,processes", [(None, 1), ("staging", 2)])
def test_sections_file(spindle, deploy, processes):
    """examples/deploy/sections.ini: %d, if-env / if-not-env, ini = :section."""
    env = {"DEPLOY": deploy} if deploy else {}
    s = spindle("--ini", example("deploy/sections.ini"), processes=processes, env=env,
                extra=False)
    assert sorted(s.worker_pids()) == list(range(1, processes + 1))

    def getenv(name):
        return requests.get(s.url + "/getenv", params={"name": name}, timeout=10).json()["value"]
    assert getenv("DEPLOY_NAME") == (deploy or "development")
    assert getenv("CONF_FILE") == "sections"


def test_abstract_socket_reuse_port_logto_umask(spindle, tmp_path):
    name = "@spindle-test-%d" % os.getpid()
    # --logto the file the harness reads, so it still sees the server start.
    logfile = tmp_path / "spindle" / "spindle.log"
    pidfile = tmp_path / "p.pid"
    s = spindle("--socket", name, "--http-socket", "127.0.0.1:0", "--reuse-port",
                "--wsgi-file", example("hello.py"), "--logto", str(logfile),
                "--logfile-chmod", "600", "--umask", "027", "--pidfile", str(pidfile),
                "--vacuum")
    assert "bound socket %s" % name in logfile.read_text()
    assert oct(os.stat(logfile).st_mode & 0o777) == "0o600"
    assert oct(os.stat(pidfile).st_mode & 0o777) == "0o640"
    assert read_pid(pidfile) == s.pid
    assert requests.get(s.url, timeout=10).status_code == 200
    # An abstract socket has no file; it is reached by name.
    import socket
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect("\0" + name[1:])
    c.close()
    s.stop()
    assert not pidfile.exists()


def test_attach_daemon_is_respawned_and_stopped(spindle, tmp_path):
    pidfile = tmp_path / "daemon.pid"
    cmd = "echo $$ > %s; exec sleep 600" % pidfile
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("hello.py"),
                "--attach-daemon", cmd)
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 10, what="daemon")
    first = read_pid(pidfile)
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: pidfile.read_text().strip() and read_pid(pidfile) != first, 15,
               what="daemon respawned")
    second = read_pid(pidfile)
    assert "attach-daemon" in s.log_text()
    s.stop()
    wait_until(lambda: not os.path.exists("/proc/%d" % second) or
               open("/proc/%d/stat" % second).read().split()[2] == "Z", 10,
               what="daemon stopped with the server")


def test_hooks_run_at_their_phase(spindle, tmp_path):
    order = tmp_path / "order"
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("hello.py"),
                "--hook-pre-app", "exec:echo pre-app >> %s" % order,
                "--exec-post-app", "echo post-app >> %s" % order,
                "--hook-master-start", "exec:echo master-start >> %s" % order)
    assert order.read_text().split() == ["pre-app", "post-app", "master-start"]
    assert requests.get(s.url, timeout=10).status_code == 200
    rc, out, err = run_spindle(["--http-socket", "127.0.0.1:0", "--wsgi-file",
                                example("hello.py"), "--hook-pre-app", "exec:false"], tmp_path)
    assert rc == 1 and "hook-pre-app" in err and '"false" failed' in err


def test_touch_reload(spindle, tmp_path):
    trigger = tmp_path / "reload.txt"
    trigger.write_text("1")
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("hello.py"),
                "--touch-reload", str(trigger))
    before = set(s.worker_pids().values())
    os.utime(trigger, (1, 1))
    s.wait_for_log(r"touch-reload: .* changed", timeout=10)
    wait_until(lambda: set(s.worker_pids().values()) - before, 30, what="new workers")
    assert requests.get(s.url, timeout=10).status_code == 200


@pytest.mark.parametrize("args,line", [
    (["--max-worker-lifetime", "1"], "reached max-worker-lifetime"),
    (["--reload-on-rss", "1"], "reload-on-rss 1"),
], ids=["lifetime", "rss"])
def test_recycling(spindle, args, line):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("hello.py"), *args)
    s.wait_for_log(line, timeout=15)
    s.wait_for_log(r"worker 1 \(pid \d+\) ready", timeout=15, count=2)
    assert requests.get(s.url, timeout=10).status_code == 200


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().split(b"\0")[0].decode()


def test_auto_procname_and_prefix(spindle, tmp_path):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("hello.py"), "-p", "2",
                "--auto-procname", "--procname-prefix-spaced", "mysite")
    assert cmdline(s.pid) == "mysite spindle master"
    for wid, pid in s.worker_pids().items():
        assert cmdline(pid) == "mysite spindle worker %d" % wid
    # A reload re-executes the master with its real arguments.
    old = set(s.worker_pids().values())
    s.signal(signal.SIGHUP)
    wait_until(lambda: len(set(s.worker_pids().values()) - old) >= 2, 30, what="reload")
    assert requests.get(s.url, timeout=10).status_code == 200
    assert cmdline(s.pid) == "mysite spindle master"


def test_daemonize_touch_logreopen_after_logrotate(tmp_path):
    # A daemon that logrotate serves: the file is moved, the trigger
    # touched (postrotate), and the later lines of every process go to a
    # new file of the same name.
    from harness import http_request, pid_alive, spindle_bin
    log, pidfile, trigger = tmp_path / "d.log", tmp_path / "d.pid", tmp_path / "reopen"
    trigger.write_text("")
    rc = subprocess.call([spindle_bin(), "--http-socket", "127.0.0.1:0", "--processes", "2",
                          "--wsgi-file", example("probe.py"), "--daemonize", str(log),
                          "--pidfile", str(pidfile), "--touch-logreopen", str(trigger)],
                         cwd=str(tmp_path), stdin=subprocess.DEVNULL)
    assert rc == 0
    wait_until(lambda: log.exists() and log.read_text().count(" ready") >= 2, 30,
               what="two workers ready in the daemon's log")
    pid = read_pid(str(pidfile))
    try:
        addr = re.search(r"bound http-socket (\S+)", log.read_text()).group(1)
        host, port = addr.rsplit(":", 1)
        http_request((host, int(port)), "GET", "/pid?tag=d-before")
        wait_until(lambda: "tag=d-before" in log.read_text(), 10, what="first access line")
        os.rename(str(log), str(log) + ".1")
        st = os.stat(str(trigger))
        os.utime(str(trigger), ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
        wait_until(lambda: log.exists() and "log reopened" in log.read_text(), 15,
                   what="the reopened log")
        for i in range(6):
            http_request((host, int(port)), "GET", "/pid?tag=d-after%d" % i)
        wait_until(lambda: log.read_text().count("tag=d-after") == 6, 10,
                   what="every later access line in the new file")
        with open(str(log) + ".1") as f:
            assert "d-after" not in f.read()
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not pid_alive(pid), 20, what="the daemon to stop")
