"""Harness for the live tests: start the real spindle binary, read its log,
talk raw HTTP and the raw uwsgi protocol to it.

Everything here is bounded in time: every wait has a deadline and every loop
a limit, so a hung server fails a test instead of hanging the suite.
"""

import os
import re
import resource
import shlex
import signal
import socket
import struct
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
EXAMPLES = os.path.join(REPO, "examples")

# Log lines that mean the server broke in a way no test expects (a worker
# dying of a fault signal is reported by the master as "killed by signal N
# (SIGSEGV)"; tests that kill workers on purpose use SIGKILL).
CRASH_PATTERNS = ("AddressSanitizer", "runtime error:", "Segmentation fault",
                  "LeakSanitizer", "ThreadSanitizer", "(SIGSEGV)", "(SIGABRT)", "(SIGBUS)",
                  "(SIGFPE)", "(SIGILL)", "Fatal Python error")

BOUND_RE = re.compile(r"bound (http-socket|socket) (\S+)")
READY_RE = re.compile(r"worker (\d+) \(pid (\d+)\) ready")
RESPAWN_RE = re.compile(
    r"worker (\d+) \(pid (\d+)\) (exited with status \d+|killed by signal \d+ \(\w+\)); respawning")
HARAKIRI_RE = re.compile(r'harakiri: worker (\d+) \(pid (\d+)\) stuck [\d.]+s in "(.*)"')
MAXREQ_RE = re.compile(r"worker (\d+) \(pid (\d+)\) reached max-requests")
# A quoted field may hold \" and \\ (quotes and backslashes from the request).
ACCESS_RE = re.compile(r'ACCESS (\S+) "((?:[^"\\]|\\.)*)" (\d{3}) (\d+) ([\d.]+)m?s')
LINE_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[(\d+)\] (DEBUG|INFO|WARN|ERROR|ACCESS) ")


def spindle_bin():
    return os.environ.get("SPINDLE_BIN") or os.path.join(REPO, "spindle")


_sanitized = {}


def sanitized():
    """True if the binary under test is built with AddressSanitizer (make
    asan): it then needs unlimited address space, and greenlet cannot run on
    it (greenlet switches by copying slices of the C stack to and from the
    heap, which ASan reads as overflows of the redzones between frames)."""
    path = spindle_bin()
    if path not in _sanitized:
        try:
            with open(path, "rb") as f:
                _sanitized[path] = b"__asan_init" in f.read()
        except OSError:
            _sanitized[path] = False
    return _sanitized[path]


def uses_greenlet(args):
    """True if the arguments pick the greenlet suspend engine."""
    for i, a in enumerate(args):
        if a in ("--greenlet", "--suspend=greenlet") or (
                a == "greenlet" and i > 0 and args[i - 1] == "--suspend"):
            return True
    return False


def sanitizer_report_prefixes():
    """The log_path prefixes that ASAN_OPTIONS / UBSAN_OPTIONS name: each
    sanitized process writes its reports to PREFIX.PID, not to stderr."""
    out = []
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        for item in re.split(r"[:\s]+", os.environ.get(var, "")):
            if item.startswith("log_path="):
                out.append(item.split("=", 1)[1])
    return out


def sanitizer_reports(pids=None):
    """{path: text} of the sanitizer reports written so far (of those pids
    only, when given)."""
    found = {}
    for prefix in sanitizer_report_prefixes():
        d, base = os.path.split(prefix)
        try:
            names = os.listdir(d or ".")
        except FileNotFoundError:
            continue
        for n in names:
            if not n.startswith(base + "."):
                continue
            pid = n[len(base) + 1:]
            if pids is not None and (not pid.isdigit() or int(pid) not in pids):
                continue
            path = os.path.join(d, n)
            with open(path, "rb") as f:
                found[path] = f.read().decode("utf-8", "replace")
    return found


def extra_args():
    return shlex.split(os.environ.get("SPINDLE_EXTRA_ARGS", ""))


PAIRINGS_FILE = os.path.join(REPO, "t", "pairings")


def pairings():
    """[(name, engine arguments with CORES)] from t/pairings, in file order."""
    out = []
    with open(PAIRINGS_FILE) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if line:
                out.append((line[0], line[1:]))
    return out


def pairing_names():
    return [name for name, _ in pairings()]


def pairing_args(name, cores):
    """The arguments that run a worker on the pairing `name` with `cores` cores."""
    for n, args in pairings():
        if n == name:
            return [str(cores) if a == "CORES" else a for a in args]
    raise KeyError("no pairing %r in %s" % (name, PAIRINGS_FILE))


def cores_in(args):
    """The async core count the arguments give (the last --async/--tornado
    wins), or None."""
    n = None
    for i, a in enumerate(args):
        if a in ("--async", "--tornado") and i + 1 < len(args):
            n = int(args[i + 1])
        elif a.startswith("--async=") or a.startswith("--tornado="):
            n = int(a.split("=", 1)[1])
    return n


def current_pairing():
    """The pairing SPINDLE_PAIRING names (make live sets it), or None."""
    return os.environ.get("SPINDLE_PAIRING") or None


def with_pairing(args, name):
    """args with their engine choice replaced by the pairing's, keeping the
    core count they ask for (16 when they ask for none)."""
    cores = cores_in(args) or 16
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("--async", "--tornado", "--loop", "--suspend"):
            skip = True
            continue
        if a in ("--fibers", "--greenlet") or a.split("=", 1)[0] in (
                "--async", "--tornado", "--loop", "--suspend"):
            continue
        out.append(a)
    return out + pairing_args(name, cores)


def server_args(args, extra):
    """A test's server arguments as run: under SPINDLE_PAIRING's engines and
    with SPINDLE_EXTRA_ARGS appended, unless extra=False."""
    args = [str(a) for a in args]
    if not extra:
        return args
    if current_pairing():
        args = with_pairing(args, current_pairing())
    return args + extra_args()


def example(name):
    return os.path.join(EXAMPLES, name)


def child_env(extra=None):
    """The environment for a server: ours, minus anything that would point the
    embedded interpreter at a different Python installation."""
    env = dict(os.environ)
    for k in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONSTARTUP"):
        env.pop(k, None)
    env.pop("SPINDLE_EXTRA_ARGS", None)
    env.pop("SPINDLE_PAIRING", None)
    if extra:
        env.update(extra)
    return env


def processes_in(args):
    """How many workers the arguments ask for (default 1)."""
    n = 1
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("--processes", "-p") and i + 1 < len(args):
            n = int(args[i + 1])
            i += 1
        elif a.startswith("--processes="):
            n = int(a.split("=", 1)[1])
        elif a.startswith("-p") and a[2:].isdigit():
            n = int(a[2:])
        i += 1
    return n


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll predicate() until it returns something truthy or the deadline
    passes; returns the value or raises AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


class ServerStartError(AssertionError):
    pass


class Server:
    """One spindle process (the master) started in its own directory.

    args are the server arguments; SPINDLE_EXTRA_ARGS is appended unless
    extra=False. processes is the number of `ready` lines to wait for
    (default: from --processes/-p in the arguments).
    """

    _live = set()  # servers started and not yet stopped (for failure reports)

    def __init__(self, args, workdir, processes=None, env=None, extra=True, name="spindle",
                 expect_bound=True, nofile=None):
        self.args = server_args(args, extra)
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.processes = processes if processes is not None else processes_in(self.args)
        self.env = child_env(env)
        self.name = name
        self.expect_bound = expect_bound
        self.log_path = os.path.join(self.workdir, name + ".log")
        # The file the log is read from, when the server writes its log
        # elsewhere than stderr (--logger file:PATH); default log_path.
        self.read_path = None
        self.proc = None
        self.returncode = None
        self.allow_crash_lines = False
        self.addresses = []  # (kind, address) in log order
        # RLIMIT_NOFILE for the server (a number, or (soft, hard)), or None to inherit ours
        self.nofile = nofile

    # -- life cycle ---------------------------------------------------------
    def start(self, timeout=20.0):
        if sanitized() and uses_greenlet(self.args):
            self._skip_greenlet()
        nofile = self.nofile

        def limit_fds():
            limits = nofile if isinstance(nofile, tuple) else (nofile, nofile)
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)

        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen([spindle_bin()] + self.args, cwd=self.workdir,
                                     stdin=subprocess.DEVNULL, stdout=self._log_file,
                                     stderr=self._log_file, env=self.env,
                                     preexec_fn=limit_fds if nofile else None)
        Server._live.add(self)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        if sanitized() and ", suspend greenlet" in self.log_text():  # chosen in an ini file
            self.stop()
            self._skip_greenlet()
        return self

    @staticmethod
    def _skip_greenlet():
        import pytest
        pytest.skip("greenlet copies C stacks, which AddressSanitizer reports as overflows")

    def wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            ready = {m.group(1) for m in READY_RE.finditer(text)}
            bound = BOUND_RE.findall(text)
            if len(ready) >= self.processes and (bound or not self.expect_bound):
                self.addresses = bound
                return
            if self.proc.poll() is not None:
                raise ServerStartError("spindle exited with %s before it was ready; log:\n%s"
                                       % (self.proc.returncode, text))
            if time.monotonic() >= deadline:
                raise ServerStartError("spindle not ready after %.0fs (%d/%d workers); log:\n%s"
                                       % (timeout, len(ready), self.processes, text))
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Stop by PID: sig, wait up to timeout, then SIGKILL. Returns the exit
        status (negative for a signal, as subprocess reports it)."""
        if self.proc is None:
            return None
        workers = self.worker_pids_ever()
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.returncode = self.proc.returncode
        # Workers orphaned by a crashed master must not outlive the test.
        for pid in workers:
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if not self._log_file.closed:
            self._log_file.close()
        Server._live.discard(self)
        return self.returncode

    def signal(self, sig):
        self.proc.send_signal(sig)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- addresses ----------------------------------------------------------
    @property
    def pid(self):
        return self.proc.pid

    def http_addrs(self):
        return [a for k, a in self.addresses if k == "http-socket"]

    @property
    def http_addr(self):
        addrs = self.http_addrs()
        assert addrs, "no http-socket bound; log:\n" + self.log_text()
        return addrs[0]

    @property
    def host(self):
        return self.http_addr.rsplit(":", 1)[0]

    @property
    def port(self):
        return int(self.http_addr.rsplit(":", 1)[1])

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    @property
    def uwsgi_addr(self):
        addrs = [a for k, a in self.addresses if k == "socket"]
        assert addrs, "no uwsgi socket bound; log:\n" + self.log_text()
        return addrs[0]

    # -- log ----------------------------------------------------------------
    def log_text(self):
        try:
            with open(self.read_path or self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_lines(self):
        return self.log_text().splitlines()

    def wait_for_log(self, regex, timeout=10.0, count=1, after=0):
        """Wait until regex matches at least count times in the log (from
        character offset after); returns the list of match objects."""
        rx = re.compile(regex)

        def found():
            ms = list(rx.finditer(self.log_text(), after))
            return ms if len(ms) >= count else None
        try:
            return wait_until(found, timeout, what="log /%s/ x%d" % (regex, count))
        except AssertionError:
            raise AssertionError("log never matched /%s/ (x%d) within %.0fs; log:\n%s"
                                 % (regex, count, timeout, self.log_text()))

    def log_offset(self):
        return len(self.log_text())

    def ready_lines(self):
        return [(int(w), int(p)) for w, p in READY_RE.findall(self.log_text())]

    def worker_pids(self):
        """Current pid of each worker id: the latest ready line per worker."""
        cur = {}
        for w, p in self.ready_lines():
            cur[w] = p
        return cur

    def worker_pids_ever(self):
        return {p for _, p in self.ready_lines()}

    def crash_lines(self):
        """Log lines that say the server broke, and the sanitizer reports
        that its master and workers wrote to files (make asan)."""
        bad = [l for l in self.log_lines() if any(p in l for p in CRASH_PATTERNS)]
        if self.proc is not None:
            for path, text in sorted(sanitizer_reports(self.worker_pids_ever() | {self.pid}).items()):
                bad += ["sanitizer report %s:" % path] + text.splitlines()
        return bad

    def access_lines(self):
        return [l for l in self.log_lines() if " ACCESS " in l]


def run_spindle(args, cwd, timeout=15.0, extra=False, env=None):
    """Run the binary to completion (option errors, --help, --version)."""
    p = subprocess.run([spindle_bin()] + server_args(args, extra),
                       cwd=str(cwd), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout, env=child_env(env))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# Raw HTTP


class Response:
    def __init__(self, version, status, reason, headers, body, chunked=False, raw_head=b""):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in order
        self.body = body
        self.chunked = chunked
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def __repr__(self):
        return "<Response %s %d %r %r body=%d bytes>" % (
            self.version, self.status, self.reason, self.headers, len(self.body))


class ConnectionClosed(Exception):
    pass


class RawConn:
    """A client socket that sends bytes and parses responses by hand, so the
    tests see exactly what went over the wire."""

    def __init__(self, addr, timeout=10.0):
        self.timeout = timeout
        if isinstance(addr, str) and addr.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = addr
        else:
            if isinstance(addr, str):
                host, port = addr.rsplit(":", 1)
                addr = (host, int(port))
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            target = addr
        self.sock.settimeout(timeout)
        self.sock.connect(target)
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self, deadline):
        if self.eof:
            raise ConnectionClosed("connection closed by server")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("read deadline passed")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise ConnectionClosed("connection closed by server")
        self.buf += chunk

    def _read_until(self, marker, deadline, limit=1 << 20):
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise AssertionError("no %r within %d bytes" % (marker, limit))
            self._fill(deadline)
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_to_eof(self, deadline):
        while True:
            try:
                self._fill(deadline)
            except ConnectionClosed:
                break
        out, self.buf = self.buf, b""
        return out

    def read_head(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        head = self._read_until(b"\r\n\r\n", deadline)
        lines = head[:-4].split(b"\r\n")
        status_line = lines[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        assert len(parts) >= 2 and parts[0].startswith("HTTP/"), "bad status line %r" % status_line
        version = parts[0]
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for l in lines[1:]:
            k, _, v = l.decode("latin-1").partition(":")
            headers.append((k.strip(), v.strip()))
        return version, status, reason, headers, head

    def read_response(self, method="GET", timeout=None, skip_interim=True):
        """Read one full response. Interim 1xx responses are skipped unless
        skip_interim is False (then the 1xx is returned by itself)."""
        timeout = timeout or self.timeout
        deadline = time.monotonic() + timeout
        for _ in range(10):
            version, status, reason, headers, head = self.read_head(deadline - time.monotonic())
            if 100 <= status < 200:
                if skip_interim:
                    continue
                return Response(version, status, reason, headers, b"", raw_head=head)
            break
        r = Response(version, status, reason, headers, b"", raw_head=head)
        if method == "HEAD" or status in (204, 304):
            return r
        te = (r.header("Transfer-Encoding") or "").lower()
        cl = r.header("Content-Length")
        if "chunked" in te:
            r.chunked = True
            r.body = self._read_chunked(deadline)
        elif cl is not None:
            r.body = self._read_exact(int(cl), deadline)
        else:
            r.body = self._read_to_eof(deadline)
        return r

    def _read_chunked(self, deadline):
        body = b""
        for _ in range(1 << 20):
            line = self._read_until(b"\r\n", deadline)
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                # trailers, then the final CRLF
                for _ in range(100):
                    t = self._read_until(b"\r\n", deadline)
                    if t == b"\r\n":
                        return body
                raise AssertionError("too many trailers")
            body += self._read_exact(size, deadline)
            crlf = self._read_exact(2, deadline)
            assert crlf == b"\r\n", "chunk not followed by CRLF: %r" % crlf
        raise AssertionError("too many chunks")

    def wait_closed(self, timeout=10.0):
        """True if the server closes the connection (EOF or reset) within
        timeout, after discarding anything it still sends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                self.eof = True
                return True
            self.buf += chunk
        return False

    def is_open_after(self, seconds):
        """True if nothing closed the connection during `seconds` (data that
        arrives is kept)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return True
            except ConnectionResetError:
                return False
            if not chunk:
                return False
            self.buf += chunk
        return True


def http_request(addr, method, path, headers=(), body=b"", version="HTTP/1.1", host="localhost",
                 timeout=10.0):
    """One request on a fresh connection (Connection: close); returns the
    parsed Response."""
    with RawConn(addr, timeout) as c:
        c.send(build_request(method, path, headers, body, version, host,
                             extra=[("Connection", "close")]))
        return c.read_response(method)


def build_request(method, path, headers=(), body=b"", version="HTTP/1.1", host="localhost",
                  extra=()):
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s %s" % (method, path, version)]
    names = {k.lower() for k, _ in headers}
    if host is not None and "host" not in names:
        lines.append("Host: %s" % host)
    for k, v in list(headers) + list(extra):
        lines.append("%s: %s" % (k, v))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*parts):
    out = b""
    for p in parts:
        if isinstance(p, str):
            p = p.encode()
        out += b"%x\r\n%s\r\n" % (len(p), p)
    return out + b"0\r\n\r\n"


# ---------------------------------------------------------------------------
# Raw uwsgi protocol


def uwsgi_packet(vars_, body=b"", modifier1=0, modifier2=0):
    """Encode a uwsgi request: u8 modifier1, u16le size, u8 modifier2, then
    u16le-length-prefixed key and value strings; the body follows."""
    payload = b""
    for k, v in vars_.items():
        kb = k.encode("latin-1")
        vb = v.encode("latin-1")
        payload += struct.pack("<H", len(kb)) + kb + struct.pack("<H", len(vb)) + vb
    assert len(payload) < 65536
    return struct.pack("<BHB", modifier1, len(payload), modifier2) + payload + body


def uwsgi_vars(method, path, query="", headers=(), body=b"", server_port="80"):
    v = {
        "REQUEST_METHOD": method,
        "REQUEST_URI": path + ("?" + query if query else ""),
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "uwsgi.test",
        "SERVER_PORT": server_port,
        "REMOTE_ADDR": "10.1.2.3",
        "REMOTE_PORT": "54321",
        "HTTP_HOST": "uwsgi.test",
    }
    if body:
        v["CONTENT_LENGTH"] = str(len(body))
    for k, val in headers:
        v[k] = val
    return v


def uwsgi_request(addr, vars_, body=b"", timeout=10.0):
    """Send one uwsgi packet and read the HTTP response the server writes
    back (delimited by Content-Length, chunking or close)."""
    with RawConn(addr, timeout) as c:
        c.send(uwsgi_packet(vars_, body))
        return c.read_response(vars_.get("REQUEST_METHOD", "GET"))
