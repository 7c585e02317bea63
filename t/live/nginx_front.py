"""The real nginx in front of spindle: a private configuration (every path
under one directory, its own pid and temp files), started in the
foreground, ready when its listening sockets answer, stopped by its PID.

    with nginx_front.running(d, servers, ["front.sock"]) as proc: ...

`servers` is the text of the `server { }` blocks (and anything else that
belongs in `http { }`), with `{d}` standing for the directory and `{params}`
for Debian's uwsgi_params."""

import contextlib
import os
import signal
import subprocess

import pytest

from harness import RawConn, wait_until

NGINX = "/usr/sbin/nginx"
UWSGI_PARAMS = "/etc/nginx/uwsgi_params"

_CONF = """\
{user}
worker_processes 1;
error_log {d}/error.log info;
pid {d}/nginx.pid;
events {{ worker_connections {connections}; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
{servers}
}}
"""


def default_user():
    """nginx as root keeps its workers as root only when told to."""
    return "root" if os.geteuid() == 0 else None


def logs(d):
    text = ""
    for name in ("stderr.log", "error.log"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            with open(p, errors="replace") as f:
                text += f.read()
    return text


@contextlib.contextmanager
def running(d, servers, sockets, user=None, connections=256):
    """Starts nginx with `servers` in directory `d`; yields the process once
    every unix socket named in `sockets` (relative to d) accepts."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx not installed")
    d = str(d)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(_CONF.format(d=d, user="user %s;" % user if user else "",
                             connections=connections,
                             servers=servers.replace("{d}", d).replace("{params}",
                                                                       UWSGI_PARAMS)))
    paths = [os.path.join(d, s) for s in sockets]
    log = open(os.path.join(d, "stderr.log"), "wb")
    proc = subprocess.Popen([NGINX, "-e", os.path.join(d, "error.log"), "-c", conf, "-p", d,
                             "-g", "daemon off;"], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=log)

    def up():
        if proc.poll() is not None:
            raise AssertionError("nginx exited: %s\n%s" % (proc.returncode, logs(d)))
        try:
            for p in paths:
                RawConn(p, 2).close()
            return True
        except OSError:
            return False
    try:
        wait_until(up, 20, what="nginx sockets")
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
