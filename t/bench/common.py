"""The benchmark's machinery: servers, processes, CPU accounting, wrk.

Used by run.py (the command line), scenarios.py (the table of rows),
parked.py and probes.py (rows that are not throughput) and report.py.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
APPS = HERE / "apps"
RESULTS = HERE / "RESULTS.md"
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
READY_TIMEOUT = 20.0
DISTURBED = 0.10  # share of the server's CPU taken by other load above which a row is re-measured
MARK_OTHERS = 0.05  # ... above which a row (or a round of a pair) is marked in the tables


# --------------------------------------------------------------------------
# Options shared by every scenario (filled from the command line).

@dataclasses.dataclass
class Settings:
    duration: int = 10             # whole seconds: wrk takes no fractions
    warmup: int = 2
    server_cpu: Optional[str] = "1"
    client_cpu: Optional[str] = "0"
    spindle: Path = ROOT / "spindle"
    workdir: Path = Path(".")
    verbose: bool = False
    repeat: int = 1                # measured runs per row; the least disturbed one is kept
    retry_disturbed: bool = True   # one more run when the best one was disturbed
    pair_rounds: int = 5           # alternating rounds per side-by-side pair (0: no pairs)
    pair_slice: int = 2            # seconds per server per round


def pinned(cpu: Optional[str], argv: list[str]) -> list[str]:
    """argv run under `taskset -c CPU` (taskset execs, so the pid is argv's)."""
    return (["taskset", "-c", cpu] if cpu is not None else []) + argv


def free_port() -> int:
    """A port for peers that cannot report the one they bound (tiny race, accepted)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# A running server: its processes, its address, its log.

@dataclasses.dataclass
class Running:
    proc: subprocess.Popen
    port: int
    worker_pids: list[int]
    master_pid: Optional[int]
    log_path: Path
    argv: list[str]
    stop_signal: int = signal.SIGTERM
    extra: dict = dataclasses.field(default_factory=dict)  # whatever a row's starter adds

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        """stop_signal to the master, SIGKILL after 10 s, then any leftover worker by pid."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(self.stop_signal)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid in self.worker_pids:
            if pid != self.proc.pid and pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children_of(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.append(int(entry))
    return sorted(kids)


def cpu_seconds(pid: Optional[int]) -> Optional[float]:
    """utime + stime of one live process, in seconds (None if it is gone)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpus_busy(cpus: Optional[str]) -> Optional[float]:
    """Busy seconds (all but idle and iowait) of the CPUs in a taskset list like "1" or "2-3"."""
    if cpus is None:
        return None
    wanted = set()
    for part in cpus.split(","):
        lo, _, hi = part.partition("-")
        wanted.update(range(int(lo), int(hi or lo) + 1))
    busy = 0
    with open("/proc/stat") as f:
        for line in f:
            name, *vals = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in wanted:
                v = [int(x) for x in vals]
                busy += sum(v[:8]) - v[3] - v[4]  # minus idle, iowait; guest is inside user
    return busy / CLK_TCK


def http_get(port: int, path: str = "/", timeout: float = 2.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_http_ready(proc: subprocess.Popen, port: int, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n"
                               + log_path.read_text(errors="replace")[-2000:])
        try:
            status, _ = http_get(port, timeout=0.5)
            if status < 500:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server not answering HTTP after %.0fs" % READY_TIMEOUT)


def wait_children(pid: int, want: int) -> list[int]:
    deadline = time.monotonic() + READY_TIMEOUT
    kids = children_of(pid)
    while len(kids) < want and time.monotonic() < deadline:
        time.sleep(0.05)
        kids = children_of(pid)
    return kids


def spawn(argv: list[str], log_path: Path, env: Optional[dict] = None) -> subprocess.Popen:
    """argv in its own session, output to log_path; env is added to ours."""
    log = open(log_path, "wb")
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, **env} if env else None,
                                start_new_session=True)
    finally:
        log.close()


# --------------------------------------------------------------------------
# Server starters.  Each returns a Running whose port answers HTTP.

BOUND_RE = re.compile(r"bound http-socket [\d.]+:(\d+)")
READY_RE = re.compile(r"worker (\d+) \(pid (\d+)\) ready")


def start_spindle(extra: list[str] = (), processes: int = 1):
    """spindle reports its bound port and its workers' pids on stderr."""
    def start(sc: "Scenario", st: Settings, log_path: Path) -> Running:
        argv = pinned(st.server_cpu, [
            str(st.spindle), "--http-socket", f"{HOST}:0", "--wsgi-file", str(sc.app),
            "--processes", str(processes), "--disable-logging", *extra])
        if not st.spindle.exists():
            raise RuntimeError(f"{st.spindle} not built (make spindle)")
        proc = spawn(argv, log_path, sc.env)
        port, workers = None, {}
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and (port is None or len(workers) < processes):
            text = log_path.read_text(errors="replace")
            m = BOUND_RE.search(text)
            port = int(m.group(1)) if m else None
            workers = {int(w): int(p) for w, p in READY_RE.findall(text)}
            if proc.poll() is not None:
                raise RuntimeError(f"spindle exited with {proc.returncode}:\n{text[-2000:]}")
            time.sleep(0.02)
        if port is None or len(workers) < processes:
            proc.kill()
            proc.wait()
            raise RuntimeError("spindle did not report its port and ready workers:\n"
                               + log_path.read_text(errors="replace")[-2000:])
        return Running(proc, port, [workers[k] for k in sorted(workers)], proc.pid,
                       log_path, argv, signal.SIGTERM)
    return start


def start_uwsgi(extra: list[str] = (), socket_flag: str = "--http-socket",
                plugins: str = "python3", processes: int = 1):
    """Debian's uWSGI 2.0 with its python3 plugin (/usr/lib/uwsgi/plugins/python3_plugin.so).

    uWSGI 2.0 treats SIGTERM to the master as "reload", so it is stopped with SIGINT.
    """
    def start(sc: "Scenario", st: Settings, log_path: Path) -> Running:
        port = free_port()
        argv = pinned(st.server_cpu, [
            "uwsgi", "--plugin", plugins, socket_flag, f"{HOST}:{port}",
            "--wsgi-file", str(sc.app), "--processes", str(processes), "--master",
            "--disable-logging", *extra])
        proc = spawn(argv, log_path, sc.env)
        try:
            wait_http_ready(proc, port, log_path)
            workers = wait_children(proc.pid, processes)
        except Exception:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=10)
            raise
        return Running(proc, port, workers, proc.pid, log_path, argv, signal.SIGINT)
    return start


def start_gunicorn(extra: list[str] = (), workers: int = 1, stop_signal: int = signal.SIGTERM):
    """gunicorn; the app module is imported from its directory.

    SIGTERM is a graceful stop that waits for in-flight requests (up to 30 s);
    rows that leave requests parked stop it with SIGQUIT instead.
    """
    def start(sc: "Scenario", st: Settings, log_path: Path) -> Running:
        port = free_port()
        argv = pinned(st.server_cpu, [
            "/usr/bin/python3", "-m", "gunicorn", "--bind", f"{HOST}:{port}",
            "--workers", str(workers), "--chdir", str(sc.app.parent), *extra,
            f"{sc.app.stem}:application"])
        proc = spawn(argv, log_path, sc.env)
        try:
            wait_http_ready(proc, port, log_path)
            kids = wait_children(proc.pid, workers)
        except Exception:
            proc.terminate()
            proc.wait(timeout=10)
            raise
        return Running(proc, port, kids, proc.pid, log_path, argv, stop_signal)
    return start


# --------------------------------------------------------------------------
# Measurement.

WRK_DEFAULT = ["-t1", "-c50", "--latency"]


WRK_1000 = ["-t1", "-c1000", "--latency"]


def wrk_argv(st: Settings, sc: "Scenario", port: int, duration: float) -> list[str]:
    return pinned(st.client_cpu, ["wrk", *sc.wrk_args, f"-d{duration:g}s",
                                  f"http://{HOST}:{port}{sc.path}"])


UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"bad wrk duration {text!r}")
    return float(m.group(1)) * UNIT_MS[m.group(2)]


def parse_wrk(out: str, closes: bool = False) -> dict:
    """req/s, request count, latency percentiles (ms) and error counts from wrk's output.

    A server that closes the connection after each response shows up in wrk as
    one read error per request; with `closes` those are counted as reconnects,
    not errors.
    """
    res = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError("no Requests/sec in wrk output:\n" + out)
    res["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    res["requests"] = int(m.group(1)) if m else 0
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.0+)?%\s+([\d.]+\w+)", out, re.M)
        if m:
            res[f"p{pct}_ms"] = to_ms(m.group(1))
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        connect, read, write, timeout = (int(x) for x in m.groups())
        res["reconnects" if closes else "read_errors"] = read
        res["timeouts"] = timeout
        errors += connect + write + timeout + (0 if closes else read)
        res["socket_errors"] = m.group(0)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
        res["non2xx"] = int(m.group(1))
    res["errors"] = errors
    return res


def run_wrk(st: Settings, sc: "Scenario", port: int, duration: float) -> str:
    argv = wrk_argv(st, sc, port, duration)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    return out.stdout


def measure_wrk(sc: "Scenario", st: Settings, srv: Running) -> dict:
    """Warm up, then one measured wrk run with the server's CPU time around it."""
    if st.warmup > 0:
        run_wrk(st, sc, srv.port, st.warmup)
    master = srv.master_pid if srv.master_pid not in srv.worker_pids else None
    w0 = [cpu_seconds(p) for p in srv.worker_pids]
    m0 = cpu_seconds(master)
    b0 = cpus_busy(st.server_cpu)
    out = run_wrk(st, sc, srv.port, st.duration)
    b1 = cpus_busy(st.server_cpu)
    w1 = [cpu_seconds(p) for p in srv.worker_pids]
    m1 = cpu_seconds(master)
    res = parse_wrk(out, closes=sc.closes)
    res["wrk_output"] = out
    res["duration_s"] = st.duration
    n = res["requests"] or 1
    if all(x is not None for x in w0 + w1):
        res["worker_cpu_s"] = sum(b - a for a, b in zip(w0, w1))
        res["worker_us_per_req"] = res["worker_cpu_s"] / n * 1e6
        res["worker_util"] = res["worker_cpu_s"] / st.duration
    else:
        res["note"] = "a worker died during the run"
    if m0 is not None and m1 is not None:
        res["master_cpu_s"] = m1 - m0
        res["master_us_per_req"] = (m1 - m0) / n * 1e6
    if "worker_us_per_req" in res:
        # the whole server: what a stats-serving master adds shows here
        res["server_us_per_req"] = res["worker_us_per_req"] + res.get("master_us_per_req", 0.0)
    if b0 is not None and "worker_cpu_s" in res:
        # Time the server's CPU spent on anything but this server: other
        # processes, or interrupts.  A few percent is normal; much more means
        # the row was disturbed and is worth rerunning.
        others = (b1 - b0) - res["worker_cpu_s"] - res.get("master_cpu_s", 0.0)
        res["others_util"] = max(0.0, others) / st.duration
    return res




# --------------------------------------------------------------------------
# A row of the table, and running one.

@dataclasses.dataclass
class Scenario:
    name: str                      # unique, used by --only
    server: str                    # label for the table
    app: Optional[Path]
    start: Optional[Callable[["Scenario", Settings, Path], Running]]  # None: no server
    wrk_args: list[str] = dataclasses.field(default_factory=lambda: list(WRK_DEFAULT))
    expect: Optional[bytes] = None # body checked once before measuring
    path: str = "/"
    note: str = ""
    closes: bool = False           # server closes after each response (wrk read errors expected)
    measure: Callable[["Scenario", Settings, Optional[Running]], dict] = measure_wrk
    kind: str = "wrk"              # which table: wrk, parked, switch, probe
    env: dict = dataclasses.field(default_factory=dict)  # added to the server's environment


def run_scenario(sc: Scenario, st: Settings) -> dict:
    log_path = st.workdir / (sc.name.replace("/", "_") + ".log")
    t0 = time.monotonic()
    if sc.start is None:
        try:
            res = sc.measure(sc, st, None)
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            res = {"skipped": f"measure failed: {e}"}
        res["elapsed_s"] = time.monotonic() - t0
        return res
    try:
        srv = sc.start(sc, st, log_path)
    except Exception as e:  # noqa: BLE001 - a row that cannot start is reported, not fatal
        first = (str(e).strip().splitlines() or [repr(e)])[0]
        return {"skipped": f"start failed: {first}", "log": str(e)}
    res: dict = {"server_argv": srv.argv}
    try:
        if sc.expect is not None:
            status, body = http_get(srv.port, sc.path)
            if status != 200 or body != sc.expect:
                res["skipped"] = f"wrong response: {status} {body[:80]!r}"
                return res
        if sc.kind == "wrk":
            res["wrk_argv"] = wrk_argv(st, sc, srv.port, st.duration)
        runs = [sc.measure(sc, st, srv)
                for _ in range(max(1, st.repeat) if sc.kind == "wrk" else 1)]
        # On a shared machine the run whose server CPU saw the least foreign work
        # is the most faithful one.
        runs.sort(key=lambda r: r.get("others_util", 0.0))
        if st.retry_disturbed and sc.kind == "wrk" and runs[0].get("others_util", 0.0) > DISTURBED:
            runs.append(sc.measure(sc, st, srv))
            runs.sort(key=lambda r: r.get("others_util", 0.0))
            res["remeasured"] = True
        res.update(runs[0])
        if len(runs) > 1:
            res["runs"] = len(runs)
    except Exception as e:  # noqa: BLE001
        res["skipped"] = f"measure failed: {e}"
        res["log"] = srv.log_tail()
    finally:
        srv.stop()
        res["elapsed_s"] = time.monotonic() - t0
    if srv.proc.returncode not in (0, None) and "skipped" not in res:
        res["note"] = f"exit status {srv.proc.returncode}"
    return res
