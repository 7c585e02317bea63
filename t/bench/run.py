#!/usr/bin/python3
"""Side-by-side benchmark: spindle against the servers it is modelled on.

Every row of the table is one Scenario: an app, a way to start a server on it,
and the wrk arguments to drive it.  For each scenario the server is pinned to
one CPU and wrk to another, warmed up, then measured: wrk's req/s and latency
percentiles, and the CPU time the server's worker (and master) burnt during
the measured run, per request.  Comparisons then put a spindle row beside a
baseline row and check the targets.

    /usr/bin/python3 t/bench/run.py [--duration S] [--only NAME[,NAME]] [--no-write]

A target miss is reported (MISS), never turned into a failing exit status;
the exit status is non-zero only when the harness itself cannot run.

To add a row: write a start function (or reuse start_spindle/start_uwsgi/
start_gunicorn with different flags), append a Scenario to SCENARIOS, and if
it is to be judged against another row, a Comparison to COMPARISONS.  A row
that measures something other than throughput (parked memory, say) sets its
own `measure` function; it returns a dict of the same metric names (missing
ones print as "-").
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import fnmatch
import http.client
import os
import platform
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
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


def spawn(argv: list[str], log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, cwd=ROOT,
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
        proc = spawn(argv, log_path)
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
        proc = spawn(argv, log_path)
        try:
            wait_http_ready(proc, port, log_path)
            workers = wait_children(proc.pid, processes)
        except Exception:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=10)
            raise
        return Running(proc, port, workers, proc.pid, log_path, argv, signal.SIGINT)
    return start


def start_gunicorn(extra: list[str] = (), workers: int = 1):
    """gunicorn; the app module is imported from its directory."""
    def start(sc: "Scenario", st: Settings, log_path: Path) -> Running:
        port = free_port()
        argv = pinned(st.server_cpu, [
            "/usr/bin/python3", "-m", "gunicorn", "--bind", f"{HOST}:{port}",
            "--workers", str(workers), "--chdir", str(sc.app.parent), *extra,
            f"{sc.app.stem}:application"])
        proc = spawn(argv, log_path)
        try:
            wait_http_ready(proc, port, log_path)
            kids = wait_children(proc.pid, workers)
        except Exception:
            proc.terminate()
            proc.wait(timeout=10)
            raise
        return Running(proc, port, kids, proc.pid, log_path, argv, signal.SIGTERM)
    return start


# --------------------------------------------------------------------------
# Measurement.

WRK_DEFAULT = ["-t1", "-c50", "--latency"]


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
    if b0 is not None and "worker_cpu_s" in res:
        # Time the server's CPU spent on anything but this server: other
        # processes, or interrupts.  A few percent is normal; much more means
        # the row was disturbed and is worth rerunning.
        others = (b1 - b0) - res["worker_cpu_s"] - res.get("master_cpu_s", 0.0)
        res["others_util"] = max(0.0, others) / st.duration
    return res


# --------------------------------------------------------------------------
# Scenarios and comparisons: the table.

@dataclasses.dataclass
class Scenario:
    name: str                      # unique, used by --only
    server: str                    # label for the table
    app: Path
    start: Callable[["Scenario", Settings, Path], Running]
    wrk_args: list[str] = dataclasses.field(default_factory=lambda: list(WRK_DEFAULT))
    expect: Optional[bytes] = None # body checked once before measuring
    path: str = "/"
    note: str = ""
    closes: bool = False           # server closes after each response (wrk read errors expected)
    measure: Callable[["Scenario", Settings, Running], dict] = measure_wrk


@dataclasses.dataclass
class Comparison:
    candidate: str                 # scenario names
    baseline: str
    min_rps_ratio: Optional[float] = 1.3
    max_cpu_ratio: Optional[float] = 0.6


HELLO = APPS / "hello.py"
CHUNKS = APPS / "chunks.py"
HELLO_BODY = b"Hello, World!\n"
CHUNKS_BODY = b"onetwothree"

# uWSGI's --http-socket closes the connection after every response (it
# sends no Connection: close; wrk sees a read error and reconnects), so it
# pays an accept and a close per request.  --http11-socket keeps the
# connection alive instead (a generator needs the chunked transformation for
# that, and --tcp-nodelay, or each chunked response waits out a 40 ms
# delayed ACK) -- but a synchronous worker then serves one connection until
# the client closes it: the other 49 connections of the run wait unanswered
# and wrk's latency figures only cover the one being served.  The
# --http-socket rows are the reference for the targets; the --http11-socket
# rows show uWSGI's keep-alive mode.
UWSGI_HTTP11 = ["--tcp-nodelay"]
UWSGI_CHUNKED = ["--route-run", "chunked:", "--tcp-nodelay"]

SCENARIOS: list[Scenario] = [
    Scenario("hello/spindle", "spindle", HELLO, start_spindle(), expect=HELLO_BODY),
    Scenario("hello/uwsgi", "uWSGI --http-socket", HELLO, start_uwsgi(),
             expect=HELLO_BODY, closes=True, note="closes after each response"),
    Scenario("hello/uwsgi-http11", "uWSGI --http11-socket", HELLO,
             start_uwsgi(socket_flag="--http11-socket", extra=UWSGI_HTTP11),
             expect=HELLO_BODY, note="keep-alive, one connection at a time"),
    Scenario("chunks/spindle", "spindle", CHUNKS, start_spindle(), expect=CHUNKS_BODY),
    Scenario("chunks/uwsgi", "uWSGI --http-socket", CHUNKS, start_uwsgi(),
             expect=CHUNKS_BODY, closes=True, note="closes after each response"),
    Scenario("chunks/uwsgi-http11", "uWSGI --http11-socket + chunked", CHUNKS,
             start_uwsgi(socket_flag="--http11-socket",
                         plugins="python3,transformation_chunked", extra=UWSGI_CHUNKED),
             expect=CHUNKS_BODY, note="keep-alive, chunked, one connection at a time"),
]

COMPARISONS: list[Comparison] = [
    Comparison("hello/spindle", "hello/uwsgi"),
    Comparison("hello/spindle", "hello/uwsgi-http11"),
    Comparison("chunks/spindle", "chunks/uwsgi"),
    Comparison("chunks/spindle", "chunks/uwsgi-http11"),
]


def run_scenario(sc: Scenario, st: Settings) -> dict:
    log_path = st.workdir / (sc.name.replace("/", "_") + ".log")
    t0 = time.monotonic()
    try:
        srv = sc.start(sc, st, log_path)
    except Exception as e:  # noqa: BLE001 - a row that cannot start is reported, not fatal
        first = (str(e).strip().splitlines() or [repr(e)])[0]
        return {"skipped": f"start failed: {first}", "log": str(e)}
    res: dict = {"server_argv": srv.argv}
    try:
        if sc.expect is not None:
            status, body = http_get(srv.port)
            if status != 200 or body != sc.expect:
                res["skipped"] = f"wrong response: {status} {body[:80]!r}"
                return res
        res["wrk_argv"] = wrk_argv(st, sc, srv.port, st.duration)
        runs = [sc.measure(sc, st, srv) for _ in range(max(1, st.repeat))]
        # On a shared machine the run whose server CPU saw the least foreign work
        # is the most faithful one.
        runs.sort(key=lambda r: r.get("others_util", 0.0))
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


# --------------------------------------------------------------------------
# Reporting.

def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def row_notes(sc: Scenario, r: dict) -> list[str]:
    notes = [sc.note] if sc.note else []
    if r.get("reconnects"):
        notes.append(f"{r['reconnects']:,} reconnects")
    if r.get("timeouts"):
        notes.append(f"{r['timeouts']:,} wrk timeouts")
    if r.get("read_errors"):
        notes.append(f"{r['read_errors']:,} read errors")
    if r.get("non2xx"):
        notes.append(f"{r['non2xx']:,} non-2xx")
    if r.get("note"):
        notes.append(r["note"])
    return notes


def results_table(rows: list[tuple[Scenario, dict]]) -> list[str]:
    out = ["| scenario | server | req/s | p50 ms | p99 ms | worker CPU µs/req | "
           "master CPU µs/req | worker CPU use | others on its CPU | errors | note |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for sc, r in rows:
        if "skipped" in r:
            out.append(f"| {sc.name} | {sc.server} | - | - | - | - | - | - | - | - | "
                       f"SKIPPED: {r['skipped']} |")
            continue
        util, others = r.get("worker_util"), r.get("others_util")
        out.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            sc.name, sc.server, fmt(r.get("rps"), ",.0f"), fmt(r.get("p50_ms"), ".3f"),
            fmt(r.get("p99_ms"), ".3f"), fmt(r.get("worker_us_per_req"), ".1f"),
            fmt(r.get("master_us_per_req"), ".2f"),
            "-" if util is None else f"{util * 100:.0f}%",
            "-" if others is None else f"{others * 100:.0f}%",
            r.get("errors", "-"), "; ".join(row_notes(sc, r))))
    return out


def comparison_table(results: dict[str, dict]) -> tuple[list[str], list[str]]:
    out = ["| spindle row | baseline row | req/s ratio | target | CPU/req ratio | target | verdict |",
           "|---|---|---:|---|---:|---|---|"]
    verdicts = []
    for c in COMPARISONS:
        a, b = results.get(c.candidate), results.get(c.baseline)
        if a is None or b is None:
            continue
        if "skipped" in a or "skipped" in b:
            out.append(f"| {c.candidate} | {c.baseline} | - | - | - | - | n/a (row skipped) |")
            continue
        rps = a["rps"] / b["rps"] if b.get("rps") else None
        cpu = (a["worker_us_per_req"] / b["worker_us_per_req"]
               if a.get("worker_us_per_req") and b.get("worker_us_per_req") else None)
        ok_rps = c.min_rps_ratio is None or (rps is not None and rps >= c.min_rps_ratio)
        ok_cpu = c.max_cpu_ratio is None or (cpu is not None and cpu <= c.max_cpu_ratio)
        verdict = "PASS" if ok_rps and ok_cpu else "MISS"
        misses = [w for w, ok in (("req/s", ok_rps), ("CPU", ok_cpu)) if not ok]
        line = "| {} | {} | {}× | ≥ {}× | {}× | ≤ {}× | {}{} |".format(
            c.candidate, c.baseline, fmt(rps, ".2f"), fmt(c.min_rps_ratio, "g"),
            fmt(cpu, ".2f"), fmt(c.max_cpu_ratio, "g"), verdict,
            f" ({', '.join(misses)})" if misses else "")
        out.append(line)
        verdicts.append(verdict)
    return out, verdicts


def first_line(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (r.stdout + r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine_info(st: Settings) -> list[str]:
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    spindle_version = first_line([str(st.spindle), "--version"]) if st.spindle.exists() else "not built"
    return [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- CPUs (nproc): {os.cpu_count()}; model: {model}",
        f"- kernel: {platform.system()} {platform.release()}",
        f"- pinning: server on CPU {st.server_cpu}, wrk on CPU {st.client_cpu}",
        f"- spindle: {spindle_version}",
        f"- uWSGI: {first_line(['uwsgi', '--version'])}",
        f"- wrk: {first_line(['wrk', '-v']).split(' Copyright')[0]}",
        f"- Python: {first_line(['/usr/bin/python3', '--version'])}",
        f"- warm-up {st.warmup:g} s, measured run {st.duration:g} s per row"
        + (f", best of {st.repeat} runs (least other load on the server's CPU)"
           if st.repeat > 1 else ""),
    ]


def shell_line(argv: list[str]) -> str:
    """argv as a command line relative to the repository root."""
    def rel(a: str) -> str:
        a = str(a)
        return "./spindle" if a == str(ROOT / "spindle") else a.replace(str(ROOT) + "/", "")
    return " ".join(rel(a) for a in argv)


def write_results(st: Settings, rows, table, comp) -> None:
    lines = ["# spindle benchmark results", "",
             "Written by `t/bench/run.py` (`make bench`); see `t/bench/README.md` for how to read it.",
             "", "## Machine", "", *machine_info(st), "", "## Results", "", *table, ""]
    disturbed = [sc.name for sc, r in rows if r.get("others_util", 0.0) > 0.10]
    if disturbed:
        lines += [f"Disturbed: on {len(disturbed)} of {len(rows)} rows other load took over 10% "
                  f"of the server's CPU (load average {os.getloadavg()[0]:.1f} at the end), so "
                  "their req/s and latency understate both servers; CPU per request holds up "
                  "better. Rerun on a quiet machine for figures to quote.", ""]
    if len(comp) > 2:
        lines += ["## spindle against the baselines", "",
                  "Ratios are spindle / baseline. Targets: spindle ≥ 1.3× the baseline's req/s "
                  "and ≤ 0.6× its worker CPU per request.", "", *comp, ""]
    lines += ["## Commands", "", "Ports are chosen at run time (spindle binds port 0 and reports it; the "
              "others get a free port found beforehand); those shown are the ones used.", ""]
    for sc, r in rows:
        if "server_argv" in r:
            lines += [f"- `{sc.name}`", f"  - server: `{shell_line(r['server_argv'])}`"]
            if "wrk_argv" in r:
                lines.append(f"  - load: `{shell_line(r['wrk_argv'])}` (after a "
                             f"{st.warmup:g} s warm-up with the same arguments)")
    lines.append("")
    RESULTS.write_text("\n".join(lines))


# --------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=10, help="measured seconds per row (10)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up seconds per row (2)")
    ap.add_argument("--only", default=None,
                    help="run only these scenarios (comma-separated names or globs, e.g. 'hello/*')")
    ap.add_argument("--no-write", action="store_true", help="do not write t/bench/RESULTS.md")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--spindle", type=Path, default=ROOT / "spindle", help="the binary to measure")
    ap.add_argument("--server-cpu", default="1", help="CPU list for the server ('' = no pinning)")
    ap.add_argument("--client-cpu", default="0", help="CPU list for wrk ('' = no pinning)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="measured runs per row; keep the one least disturbed by other load (1)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print wrk's output per row")
    args = ap.parse_args()

    if args.list:
        for sc in SCENARIOS:
            print(f"{sc.name:28} {sc.server}")
        return 0

    scenarios = SCENARIOS
    if args.only:
        pats = [p.strip() for p in args.only.split(",") if p.strip()]
        scenarios = [s for s in SCENARIOS if any(fnmatch.fnmatchcase(s.name, p) for p in pats)]
        if not scenarios:
            print(f"no scenario matches {args.only!r}; try --list", file=sys.stderr)
            return 2

    ncpu = os.cpu_count() or 1
    pin = ncpu >= 2
    if not pin:
        print("only one CPU: running without pinning", file=sys.stderr)
    # Many-connection rows need descriptors; raise the soft limit for us and our children.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    with tempfile.TemporaryDirectory(prefix="spindle-bench-") as tmp:
        st = Settings(duration=args.duration, warmup=args.warmup,
                      server_cpu=(args.server_cpu or None) if pin else None,
                      client_cpu=(args.client_cpu or None) if pin else None,
                      spindle=args.spindle.resolve(), workdir=Path(tmp), verbose=args.verbose,
                      repeat=args.repeat)
        rows: list[tuple[Scenario, dict]] = []
        for sc in scenarios:
            print(f"== {sc.name} ({sc.server}) ...", end="", flush=True)
            r = run_scenario(sc, st)
            rows.append((sc, r))
            if "skipped" in r:
                print(f" SKIPPED: {r['skipped']}")
                if args.verbose and r.get("log"):
                    print(r["log"])
            else:
                print(" {:,.0f} req/s, p99 {:.3f} ms, {} µs CPU/req".format(
                    r["rps"], r.get("p99_ms", float("nan")),
                    fmt(r.get("worker_us_per_req"), ".1f")))
                if args.verbose:
                    print(r["wrk_output"])

    table = results_table(rows)
    results = {sc.name: r for sc, r in rows}
    comp, verdicts = comparison_table(results)
    print()
    print("\n".join(table))
    if verdicts:
        print()
        print("spindle / baseline (targets: req/s ≥ 1.3×, CPU per request ≤ 0.6×)")
        print("\n".join(comp))
    if not args.no_write:
        write_results(st, rows, table, comp)
        print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
