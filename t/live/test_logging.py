"""The access log and the logging options: the default line (user agent,
referer, bytes actually sent, escaping), uWSGI's --log-format variables,
--log-4xx/--log-5xx/--log-slow with --disable-logging, --log-x-forwarded-for,
--log-date, --logger/--req-logger file:PATH, --log-master, --touch-logreopen
and the log files reopened at reload."""

import os
import re
import signal
import socket

import pytest

from harness import (ACCESS_RE, RawConn, build_request, example, http_request, uwsgi_request,
                     uwsgi_vars, wait_until)

PROBE = example("probe.py")


@pytest.fixture(scope="module")
def srv(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--socket", "127.0.0.1:0",
                          "--wsgi-file", PROBE, "--buffer-size", "65536")


def line_for(srv, marker, after=0, access=True):
    """The access line of the request marked `marker` (with --log-format:
    the first line that has it)."""
    rx = r"[^\n]*%s%s[^\n]*" % (" ACCESS [^\n]*" if access else "", re.escape(marker))
    return srv.wait_for_log(rx, after=after)[0].group(0)


def test_default_line_has_referer_and_user_agent(srv):
    before = srv.log_offset()
    http_request(srv.http_addr, "GET", "/pid?tag=ua1",
                 headers=[("User-Agent", "probe-agent/1.0"), ("Referer", "http://ref.example/x")])
    line = line_for(srv, "tag=ua1", before)
    assert ACCESS_RE.search(line), line
    assert line.endswith('"http://ref.example/x" "probe-agent/1.0"'), line
    before = srv.log_offset()
    http_request(srv.http_addr, "GET", "/pid?tag=ua2")
    assert line_for(srv, "tag=ua2", before).endswith(' "-" "-"')


def test_quotes_in_header_values_are_escaped(srv):
    before = srv.log_offset()
    http_request(srv.http_addr, "GET", "/pid?tag=q1",
                 headers=[("User-Agent", 'a" "forged\\')])
    line = line_for(srv, "tag=q1", before)
    assert line.endswith(r'"a\" \"forged\\"'), line


def test_quotes_and_control_bytes_in_request_line_are_escaped(srv):
    # Behind nginx the request line comes from uwsgi variables, which may
    # hold any byte.
    before = srv.log_offset()
    v = uwsgi_vars("GET", '/pid"x\r\nFORGED\x00z', query="tag=rl1")
    r = uwsgi_request(srv.uwsgi_addr, v)
    assert r.status == 404
    line = line_for(srv, "tag=rl1", before)
    assert r'/pid\"x\r\nFORGED\x00z?tag=rl1' in line, line
    assert ACCESS_RE.search(line), line
    assert "10.1.2.3" in line  # uwsgi's REMOTE_ADDR is the client
    assert not any(l.startswith("FORGED") for l in srv.log_lines())


def test_error_page_bytes_are_counted(srv):
    before = srv.log_offset()
    r = http_request(srv.http_addr, "GET", "/error?tag=e500")
    assert r.status == 500
    line = line_for(srv, "tag=e500", before)
    m = ACCESS_RE.search(line)
    assert m and m.group(3) == "500", line
    assert int(m.group(4)) == len(r.body) > 0, line


def test_cut_off_response_logs_bytes_written(srv):
    before = srv.log_offset()
    with RawConn(srv.http_addr) as c:
        c.send(build_request("GET", "/big?n=%d&tag=cut1" % (64 << 20)))
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.read_head()
        c.sock.recv(1000)
        # RST on close: the server's next writes fail.
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    line = line_for(srv, "tag=cut1", before)
    assert line.endswith(" (cut off)"), line
    m = ACCESS_RE.search(line)
    assert m and m.group(3) == "200", line
    assert 0 < int(m.group(4)) < (64 << 20), line


def test_exception_after_head_is_logged_as_cut_off(srv):
    before = srv.log_offset()
    with RawConn(srv.http_addr) as c:
        c.send(build_request("GET", "/error_in_iter?tag=cut2"))
        c.read_head()
    line = line_for(srv, "tag=cut2", before)
    assert line.endswith(" (cut off)"), line
    m = ACCESS_RE.search(line)
    assert int(m.group(4)) >= len(b"partial\n"), line


def test_very_long_line_is_one_line_without_nul(srv):
    before = srv.log_offset()
    agent = "A" * 30000 + "END"
    http_request(srv.http_addr, "GET", "/pid?tag=long1", headers=[("User-Agent", agent)])
    line = line_for(srv, "tag=long1", before)
    assert "\x00" not in line
    assert re.search(r"\[cut: \d+ more bytes\]$", line), line[-200:]
    assert "END" not in line


LOG_FORMAT = ('%(addr) - %(user) [%(ltime)] "%(method) %(uri) %(proto)" %(status) %(size) '
              '"%(referer)" "%(uagent)" host=%(host) ms=%(msecs) us=%(micros) pid=%(pid) '
              'wid=%(wid) rsize=%(rsize) hsize=%(hsize) cl=%(cl) time=%(time) epoch=%(epoch) '
              'v=%(var.HTTP_X_PROBE) unset=%(nosuchvar) 100%')


def test_log_format_variables(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", PROBE, "--log-format", LOG_FORMAT)
    r = http_request(s.http_addr, "POST", "/echo?tag=lf1", body=b"0123456789",
                     headers=[("User-Agent", "ua/2"), ("Referer", "http://r/"),
                              ("X-Probe", "probe-value")])
    assert r.status == 200
    line = line_for(s, "tag=lf1", access=False)
    rx = (r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
          r'"POST /echo\?tag=lf1 HTTP/1\.1" 200 (\d+) "http://r/" "ua/2" host=localhost '
          r'ms=(\d+) us=(\d+) pid=(\d+) wid=1 rsize=10 hsize=(\d+) cl=10 time=(\d+) '
          r'epoch=(\d+) v=probe-value unset=- 100%$')
    m = re.match(rx, line)
    assert m, line
    size, ms, us, pid, hsize, t, epoch = (int(x) for x in m.groups())
    assert size == 10 + hsize and hsize > 20
    assert ms == us // 1000
    assert pid in s.worker_pids().values()
    assert abs(epoch - t) < 60


def test_disable_logging_with_log_4xx_and_5xx(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", PROBE, "--disable-logging",
                "--log-4xx", "--log-5xx")
    http_request(s.http_addr, "GET", "/pid?tag=ok")
    http_request(s.http_addr, "GET", "/missing?tag=nf")
    http_request(s.http_addr, "GET", "/error?tag=boom")
    s.wait_for_log(r'ACCESS .*"GET /missing\?tag=nf HTTP/1.1" 404 ')
    s.wait_for_log(r'ACCESS .*"GET /error\?tag=boom HTTP/1.1" 500 ')
    assert not [l for l in s.access_lines() if "tag=ok" in l]


def test_disable_logging_with_log_slow(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", PROBE, "--disable-logging",
                "--log-slow", "300")
    http_request(s.http_addr, "GET", "/pid?tag=fast")
    http_request(s.http_addr, "GET", "/sleep?s=0.5&tag=slow")
    line = line_for(s, "tag=slow")
    assert float(ACCESS_RE.search(line).group(5)) >= 300
    assert not [l for l in s.access_lines() if "tag=fast" in l]


def test_log_x_forwarded_for(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", PROBE, "--log-x-forwarded-for")
    http_request(s.http_addr, "GET", "/pid?tag=xff", headers=[("X-Forwarded-For", "203.0.113.9")])
    http_request(s.http_addr, "GET", "/pid?tag=noxff")
    assert "ACCESS 203.0.113.9 " in line_for(s, "tag=xff")
    assert "ACCESS 127.0.0.1 " in line_for(s, "tag=noxff")


def test_log_date_format(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", PROBE,
                "--log-date=[%Y/%m/%d %H:%M:%S]")
    http_request(s.http_addr, "GET", "/pid?tag=date")
    line = line_for(s, "tag=date")
    assert re.match(r"^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\] \[\d+\] ACCESS ", line), line
    assert re.search(r"^\[\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\] \[\d+\] INFO .*ready",
                     s.log_text(), re.M)


def test_log_date_bare_keeps_the_default_date(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", PROBE, "--log-date")
    http_request(s.http_addr, "GET", "/pid?tag=date2")
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ", line_for(s, "tag=date2"))


def test_logger_and_req_logger_files(spindle, tmp_path):
    main_log = str(tmp_path / "main.log")
    req_log = str(tmp_path / "req.log")
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", PROBE,
                "--logger", "file:" + main_log, "--req-logger", "file:" + req_log, start=False)
    s.read_path = main_log
    s.start()
    http_request(s.http_addr, "GET", "/pid?tag=files")

    def req_text():
        with open(req_log) as f:
            return f.read()
    wait_until(lambda: "tag=files" in req_text(), 10, what="access line in req.log")
    assert re.search(r' ACCESS 127\.0\.0\.1 "GET /pid\?tag=files HTTP/1.1" 200 ', req_text())
    assert "ready" not in req_text()
    assert "tag=files" not in s.log_text()
    with open(s.log_path) as f:
        assert " ready" not in f.read()  # nothing on stderr once the logger is set


def test_logger_file_gets_access_lines_without_req_logger(spindle, tmp_path):
    main_log = str(tmp_path / "all.log")
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", PROBE,
                "--logger", "mylog file:" + main_log, start=False)
    s.read_path = main_log
    s.start()
    http_request(s.http_addr, "GET", "/pid?tag=all")
    line_for(s, "tag=all")


def test_other_logger_plugin_warns_and_logs_to_stderr(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", PROBE,
                "--logger", "syslog:myapp", "--req-logger", "socket:127.0.0.1:1717")
    warns = [l for l in s.log_lines() if " WARN " in l and "logger" in l]
    assert len(warns) == 2, warns
    assert "syslog" in warns[0] and "stderr" in warns[0]
    http_request(s.http_addr, "GET", "/pid?tag=stderr")
    line_for(s, "tag=stderr")


def test_logger_file_that_cannot_be_opened_is_refused(tmp_path):
    from harness import run_spindle
    rc, _, err = run_spindle(["--http-socket", "127.0.0.1:0", "--wsgi-file", PROBE,
                              "--logger", "file:" + str(tmp_path / "no" / "such" / "dir.log")],
                             cwd=str(tmp_path))
    assert rc == 2
    assert "--logger" in err and "cannot open" in err


def test_log_options_in_an_ini_file(spindle, tmp_path):
    ini = tmp_path / "app.ini"
    ini.write_text("[uwsgi]\nhttp-socket = 127.0.0.1:0\nwsgi-file = %s\n"
                   "logformat = ini %%(method) %%(uri) -> %%(status)\n"
                   "disable-logging = true\nlog-4xx\n" % PROBE)
    s = spindle("--ini", str(ini))
    http_request(s.http_addr, "GET", "/pid?tag=ini-ok")
    http_request(s.http_addr, "GET", "/nope?tag=ini-404")
    assert line_for(s, "tag=ini-404", access=False) == "ini GET /nope?tag=ini-404 -> 404"
    assert "tag=ini-ok" not in s.log_text()
    assert os.path.exists(str(ini))


FACTS_FORMAT = ('%(var.QUERY_STRING) hdr=%(headers) sw=%(switches) pkt=%(pktsize) '
                'm1=%(modifier1) m2=%(modifier2) rss=%(rss) vsz=%(vsz) rssM=%(rssM) '
                'vszM=%(vszM) rerr=%(rerr) werr=%(werr) ioerr=%(ioerr) pid=%(pid)')
FACTS_RX = (r'^tag=(?P<tag>\S+) hdr=(?P<hdr>\d+) sw=(?P<sw>\d+) pkt=(?P<pkt>\d+) m1=0 '
            r'm2=(?P<m2>\d+) rss=(?P<rss>\d+) vsz=(?P<vsz>\d+) rssM=(?P<rssM>\d+) '
            r'vszM=(?P<vszM>\d+) rerr=(?P<rerr>\d+) werr=(?P<werr>\d+) ioerr=(?P<ioerr>\d+) '
            r'pid=(?P<pid>\d+)$')


def facts_for(srv, tag):
    line = srv.wait_for_log(r"(?m)^tag=%s\b.*$" % re.escape(tag))[0].group(0)
    m = re.match(FACTS_RX, line)
    assert m, line
    return {k: (v if k == "tag" else int(v)) for k, v in m.groupdict().items()}


def test_log_format_request_and_worker_facts(spindle):
    # uWSGI's %(headers) (response header fields), %(switches), %(pktsize),
    # %(modifier1/2), %(rss)/%(vsz) (bytes) and their MB forms, %(rerr).
    s = spindle("--http-socket", "127.0.0.1:0", "--socket", "127.0.0.1:0", "--wsgi-file", PROBE,
                "--log-format", FACTS_FORMAT)
    r = http_request(s.http_addr, "GET", "/pid?tag=f1")
    f = facts_for(s, "f1")
    assert f["hdr"] == len(r.headers) > 2, (f, r.headers)
    assert f["sw"] >= 1 and f["m2"] == 0 and f["rerr"] == f["werr"] == f["ioerr"] == 0, f
    page = os.sysconf("SC_PAGESIZE")
    with open("/proc/%d/statm" % f["pid"]) as st:
        size, resident = (int(x) * page for x in st.read().split()[:2])
    assert 4 << 20 < f["rss"] <= f["vsz"], f
    assert abs(f["rss"] - resident) < resident // 2 and abs(f["vsz"] - size) < size // 2, f
    assert f["rssM"] == f["rss"] >> 20 and f["vszM"] == f["vsz"] >> 20, f

    # A request that parks switches into its core more than once.
    http_request(s.http_addr, "GET", "/spindle_sleep?tag=f2&s=0.05")
    assert facts_for(s, "f2")["sw"] >= 2

    # uwsgi: the packet's modifier2, and pktsize counts at least what was sent.
    v = uwsgi_vars("GET", "/pid", query="tag=f3")
    from harness import uwsgi_packet
    with RawConn(s.uwsgi_addr) as c:
        packet = uwsgi_packet(v, modifier2=7)
        c.send(packet)
        assert c.read_response().status == 200
    f3 = facts_for(s, "f3")
    assert f3["m2"] == 7, f3
    assert f3["pkt"] >= len(packet) - 4, (f3, len(packet))

    # A body that never fully arrives: a read error, counted in rerr and ioerr.
    with RawConn(s.http_addr) as c:
        c.send(build_request("POST", "/echo?tag=f4", headers=[("Content-Length", "100")])
               + b"0123456789")
        c.sock.shutdown(socket.SHUT_WR)
        c.wait_closed()
    f4 = facts_for(s, "f4")
    assert f4["rerr"] == 1 and f4["ioerr"] >= 1, f4


@pytest.mark.parametrize("flag", ["--log-format-strftime", "--logformat-strftime", None])
def test_ftime_follows_log_date_with_log_format_strftime(spindle, flag):
    args = ["--http-socket", "127.0.0.1:0", "--wsgi-file", PROBE,
            "--log-date=%Y.%m.%d", "--log-format", "%(ftime) | %(ltime) %(uri)"]
    s = spindle(*(args + ([flag] if flag else [])))
    http_request(s.http_addr, "GET", "/pid?tag=ft")
    line = line_for(s, "tag=ft", access=False)
    apache = r"\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}"
    first = r"\d{4}\.\d\d\.\d\d" if flag else apache  # uWSGI: log-date only with the flag
    assert re.match(r"^%s \| %s /pid\?tag=ft$" % (first, apache), line), line


# --- the log master -----------------------------------------------------------

PARTIAL_APP = '''
import os, spindle

def application(environ, start_response):
    tag = environ["QUERY_STRING"].encode()
    os.write(2, b"begin-" + tag)  # half a line, straight to fd 2
    spindle.sleep(0.2)
    os.write(2, b"-end\\n")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''


def fd2_of(pid):
    return os.readlink("/proc/%d/fd/2" % pid)


def test_log_master_keeps_each_workers_lines_whole(spindle, tmp_path):
    # Three workers write half a line each, then the rest 0.2 s later: through
    # the master, every line comes out whole.
    app = tmp_path / "partial.py"
    app.write_text(PARTIAL_APP)
    # One core per worker: two requests of one process would mix their
    # halves in that process already.
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", str(app), "--processes", "3",
                "--async", "1", "--log-master")
    for pid in s.worker_pids().values():
        assert fd2_of(pid).startswith("socket:"), fd2_of(pid)
    import concurrent.futures
    tags = ["t%d" % i for i in range(9)]
    with concurrent.futures.ThreadPoolExecutor(9) as pool:
        for r in pool.map(lambda t: http_request(s.http_addr, "GET", "/?" + t), tags):
            assert r.status == 200
    for t in tags:
        s.wait_for_log(r"(?m)^begin-%s-end$" % t)
        line_for(s, "/?%s " % t)
    assert not re.search(r"begin-t\d+begin", s.log_text())


def test_log_master_survives_a_reload(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", PROBE, "--processes", "2",
                "--log-master")
    old = set(s.worker_pids().values())
    http_request(s.http_addr, "GET", "/pid?tag=lm-before")
    line_for(s, "tag=lm-before")
    s.signal(signal.SIGHUP)
    wait_until(lambda: len(set(s.worker_pids().values()) - old) == 2, 30, what="new workers")
    for pid in set(s.worker_pids().values()) - old:
        assert fd2_of(pid).startswith("socket:")
    for i in range(4):
        http_request(s.http_addr, "GET", "/pid?tag=lm-after%d" % i)
        line_for(s, "tag=lm-after%d" % i)


@pytest.mark.parametrize("how", ["logto", "logger"])
def test_touch_logreopen_after_logrotate_moves_the_file(spindle, tmp_path, how):
    # logrotate's way: move the file, touch the trigger; every process's
    # later lines go to the new file.
    log = str(tmp_path / "app.log")
    trigger = tmp_path / "reopen"
    trigger.write_text("")
    where = ["--logto", log] if how == "logto" else ["--logger", "file:" + log]
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", PROBE, "--processes", "2",
                "--touch-logreopen", str(trigger), *where, start=False)
    s.read_path = log
    s.start()
    http_request(s.http_addr, "GET", "/pid?tag=rot-before")
    line_for(s, "tag=rot-before")
    os.rename(log, log + ".1")
    http_request(s.http_addr, "GET", "/pid?tag=rot-moved")
    st = os.stat(str(trigger))
    os.utime(str(trigger), ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    s.wait_for_log(r"touch-logreopen: log reopened", timeout=15)
    for i in range(6):  # enough to reach both workers
        http_request(s.http_addr, "GET", "/pid?tag=rot-after%d" % i)
        line_for(s, "tag=rot-after%d" % i)
    with open(log + ".1") as f:
        old = f.read()
    assert "tag=rot-before" in old and "tag=rot-moved" in old
    assert "rot-after" not in old and "rot-before" not in s.log_text()


@pytest.mark.parametrize("lazy", [False, True])
def test_every_reload_reopens_the_log_file(spindle, tmp_path, lazy):
    # uWSGI reopens on reload only with log-reopen; spindle always does, both
    # when the master re-executes itself and when --lazy-apps replaces the
    # workers one by one.
    log = str(tmp_path / "app.log")
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", PROBE, "--logto", log,
                *(["--lazy-apps"] if lazy else []), start=False)
    s.read_path = log
    s.start()
    old = set(s.worker_pids().values())
    os.rename(log, log + ".1")
    s.signal(signal.SIGHUP)
    wait_until(lambda: set(s.worker_pids().values()) - old, 30, what="a new worker in the new file")
    for pid in old:  # an old worker still serving writes the old file until it exits
        s.wait_for_log(r"worker \d+ \(pid %d\) exited" % pid, timeout=30)
    http_request(s.http_addr, "GET", "/pid?tag=reopened")
    line_for(s, "tag=reopened")
    with open(log + ".1") as f:
        assert "tag=reopened" not in f.read()


LOGVAR_APP = '''
import uwsgi

def application(environ, start_response):
    uwsgi.set_logvar("foo", "bar")
    uwsgi.set_logvar("worker_id", str(uwsgi.worker_id()))
    uwsgi.set_logvar("foo", uwsgi.get_logvar("foo") + "2")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [repr(uwsgi.get_logvar("nope")).encode()]
'''


def test_logvars_set_by_the_app(spindle, tmp_path):
    # uWSGI's LogFormat example: user-defined variables live for one request.
    app = tmp_path / "logvars.py"
    app.write_text(LOGVAR_APP)
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", str(app), "--log-format",
                'worker id = %(worker_id) for request "%(method) %(uri) %(proto)" '
                'test = %(foo) unset = %(bar)')
    r = http_request(s.http_addr, "GET", "/?tag=lv")
    assert r.body == b"None"
    line = line_for(s, "tag=lv", access=False)
    assert line == 'worker id = 1 for request "GET /?tag=lv HTTP/1.1" test = bar2 unset = -', line
