"""The websocket rows: 10,000 open websockets on one worker.

ws-idle/*: the worker's RSS growth per idle websocket. A fresh server is
started, its worker's VmRSS read (the plain worker, before any request),
10,000 websockets opened by ws_clients.py processes (a Fleet), and once the
app's shared counter (apps/_parked.py) says all 10,000 are parked in their
receive call, VmRSS is read again: growth / open websockets = KiB per idle
websocket. Each round starts every row's server afresh (memory a server kept
from an earlier round would hide growth).

ws-bcast/*: every server's 10,000 websockets stay open through all rounds;
in a round each server in turn gets one broadcast: the clients forget what
they got, one of them sends "go", the app sends it to all 10,000, and the
round's figure is the time from that send until the kernel queued the
message on the last client's socket (SO_TIMESTAMPNS; the clients' own speed
does not count), with the worker's CPU time over it (/proc/PID/task/*/schedstat,
in ns: a broadcast lasts tens of milliseconds, below /proc/PID/stat's ticks).

Both kinds run in alternating rounds (A, B, C, A, B, C...) and every ratio a
target asks for is taken per round (pairs.Pair). A round is marked when the
server's worker waited for a CPU (run delay, from schedstat) for more than 5%
of the measured time: the machine was busy.
"""

from __future__ import annotations

import json
import os
import select
import statistics
import subprocess
import time
from pathlib import Path
from typing import Optional

from common import HERE, MARK_OTHERS, Running, Scenario, Settings, pinned
from pairs import Pair, start_checked
from parked import read_counter, workers_rss_kib

SOCKETS = 10_000        # websockets per server
PER_CLIENT = 5_000      # websockets per client process (each stays well under 20,000 fds)
IDLE_ROUNDS = 3         # at most: each round restarts every idle row's server
PARK_WAIT_S = 30.0      # longest wait for the app to count every websocket parked
BCAST_TIMEOUT_S = 20.0  # longest wait for one broadcast to reach everyone
SETTLE_S = 0.5          # quiet time before an RSS reading
QUIET_MAX_S = 15.0      # longest wait for a worker to go idle before a broadcast
CLIENT = HERE / "ws_clients.py"
WAITED = "the worker waited for a CPU over 5% of the time"


# --------------------------------------------------------------------------
# The client processes.

class Fleet:
    """SOCKETS websockets on one server, held by a few ws_clients.py processes."""

    def __init__(self, st: Settings, srv: Running, sc: Scenario, count: int = SOCKETS,
                 log: Optional[Path] = None):
        """Websockets on sc.path; the first one is the sender."""
        self.procs: list[subprocess.Popen] = []
        self.bufs: dict[int, bytes] = {}
        n = max(1, -(-count // PER_CLIENT))
        errlog = open(log or os.devnull, "ab")
        try:
            for i in range(n):
                share = count // n + (1 if i < count % n else 0)
                argv = ["/usr/bin/python3", str(CLIENT), "--port", str(srv.port),
                        "--count", str(share), "--path", sc.path]
                p = subprocess.Popen(pinned(st.client_cpu, argv), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=errlog)
                self.procs.append(p)
                self.bufs[p.stdout.fileno()] = b""
        finally:
            errlog.close()

    def _read(self, p: subprocess.Popen, deadline: float) -> dict:
        fd = p.stdout.fileno()
        while b"\n" not in self.bufs[fd]:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeError("websocket clients did not answer in time")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"websocket client exited ({p.wait()})")
            self.bufs[fd] += chunk
        line, self.bufs[fd] = self.bufs[fd].split(b"\n", 1)
        return json.loads(line)

    def _tell(self, p: subprocess.Popen, cmd: dict) -> None:
        p.stdin.write((json.dumps(cmd) + "\n").encode())
        p.stdin.flush()

    def opened(self, timeout: float = 120.0) -> dict:
        """Waits for every process to open its share: open, failed, first error, seconds."""
        deadline = time.monotonic() + timeout
        t0 = time.monotonic()
        got = [self._read(p, deadline) for p in self.procs]
        return {"open": sum(g["open"] for g in got), "failed": sum(g["failed"] for g in got),
                "error": next((g["error"] for g in got if g["error"]), ""),
                "open_s": max(g["open_s"] for g in got), "waited_s": time.monotonic() - t0}

    def broadcast(self, text: str = "go", timeout: float = BCAST_TIMEOUT_S) -> dict:
        """Arms every client, sends text from the sender, waits until all have a message."""
        deadline = time.monotonic() + timeout + 10
        for p in self.procs:
            self._tell(p, {"cmd": "arm"})
        armed = sum(self._read(p, deadline)["armed"] for p in self.procs)
        for p in self.procs:
            self._tell(p, {"cmd": "wait", "timeout": timeout})
        self._tell(self.procs[0], {"cmd": "send", "text": text})
        t0 = self._read(self.procs[0], deadline)["t0"]
        got = [self._read(p, deadline) for p in self.procs]
        res = {"armed": armed, "got": sum(g["got"] for g in got),
               "closed": sum(g["closed"] for g in got), "t0": t0}
        if all("last_kernel" in g for g in got):
            res.update(last_s=max(g["last_kernel"] for g in got) - t0,
                       first_s=min(g["first_kernel"] for g in got) - t0,
                       last_app_s=max(g["last_app"] for g in got) - t0)
        return res

    def close(self) -> None:
        for p in self.procs:
            try:
                self._tell(p, {"cmd": "quit"})
                p.stdin.close()
            except OSError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# --------------------------------------------------------------------------
# The worker's CPU, in nanoseconds.

def sched_ns(pids: list[int]) -> tuple[int, int]:
    """(time on a CPU, time waiting for one) of every thread of pids, in ns."""
    run = wait = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    a, b, _ = f.read().split()
            except (OSError, ValueError):
                continue
            run += int(a)
            wait += int(b)
    return run, wait


def wait_quiet(srv: Running, most_s: float = QUIET_MAX_S) -> None:
    """Until the worker spent under 2% of a 100 ms stretch on a CPU (or most_s
    passed): what the last broadcast set off (uWSGI pings each websocket on
    its first receive call, and every client answers) is over."""
    deadline = time.monotonic() + most_s
    last = sched_ns(srv.worker_pids)[0]
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = sched_ns(srv.worker_pids)[0]
        if now - last < 2_000_000:
            return
        last = now


def wait_parked(srv: Running, want: int) -> int:
    """The app's count of parked websockets, once it reaches want (or the wait ends)."""
    deadline = time.monotonic() + PARK_WAIT_S
    while time.monotonic() < deadline and read_counter(srv.extra["counter"]) < want:
        time.sleep(0.05)
    return read_counter(srv.extra["counter"])


def fleet_notes(opened: dict, parked: int) -> list[str]:
    notes = []
    if opened["failed"]:
        notes.append(f"{opened['failed']:,} websockets failed: {opened['error']}")
    if parked < opened["open"]:
        notes.append(f"only {parked:,} of {opened['open']:,} counted parked by the app")
    return notes


# --------------------------------------------------------------------------
# One measurement of each kind.

def measure_idle(sc: Scenario, st: Settings, srv: Running) -> dict:
    """RSS growth per idle websocket, from the plain worker to SOCKETS parked."""
    time.sleep(SETTLE_S)
    before = workers_rss_kib(srv)
    run0, wait0 = sched_ns(srv.worker_pids)
    t0 = time.monotonic()
    fleet = Fleet(st, srv, sc, log=srv.log_path.with_suffix(".clients"))
    try:
        opened = fleet.opened()
        parked = wait_parked(srv, opened["open"])
        elapsed = time.monotonic() - t0
        run1, wait1 = sched_ns(srv.worker_pids)
        time.sleep(SETTLE_S)
        after = workers_rss_kib(srv)
    finally:
        fleet.close()
    res = {"open": opened["open"], "parked": parked, "open_s": opened["open_s"],
           "rss_before_kib": before, "rss_after_kib": after,
           "cpu_open_ms": (run1 - run0) / 1e6, "waited": (wait1 - wait0) / 1e9 / elapsed}
    if before and after and parked:
        res["kib_per_ws"] = (after - before) / parked
    res["notes"] = fleet_notes(opened, parked)
    return res


def measure_broadcast(sc: Scenario, fleet: Fleet, srv: Running) -> dict:
    wait_quiet(srv)
    run0, wait0 = sched_ns(srv.worker_pids)
    t0 = time.monotonic()
    b = fleet.broadcast()
    elapsed = time.monotonic() - t0
    run1, wait1 = sched_ns(srv.worker_pids)
    res = {"got": b["got"], "armed": b["armed"], "closed": b["closed"],
           "cpu_ms": (run1 - run0) / 1e6, "waited": (wait1 - wait0) / 1e9 / elapsed}
    if "last_s" in b:
        res.update(bcast_ms=b["last_s"] * 1e3, first_ms=b["first_s"] * 1e3,
                   app_ms=b["last_app_s"] * 1e3)
    return res


# --------------------------------------------------------------------------
# Rounds.

FIGURES = {"ws-idle": ("kib_per_ws",), "ws-bcast": ("bcast_ms", "cpu_ms")}


def start(sc: Scenario, st: Settings) -> Running:
    """The row's server, checked with a plain GET (the apps answer it with "ws")."""
    return start_checked(sc, st)


def group_pairs(rows: list[Scenario], targets) -> list[Pair]:
    names = {sc.name for sc in rows}
    out = []
    for t in targets:
        if t.baseline and t.row in names and t.baseline in names and \
                not any(p.row == t.row and p.baseline == t.baseline for p in out):
            out.append(Pair(t.row, t.baseline, mark_note=WAITED))
    return out


def summarise(kind: str, parts: list[dict], argv) -> dict:
    """One table row from a row's rounds: medians, every round's figure, notes."""
    ok = [p for p in parts if "skipped" not in p]
    if not ok:
        return {"skipped": parts[0]["skipped"] if parts else "not measured"}
    res = {"server_argv": argv, "rounds": len(ok), "waited": max(p["waited"] for p in ok)}
    for key in ("kib_per_ws", "bcast_ms", "first_ms", "app_ms", "cpu_ms", "open_s",
                "rss_before_kib", "rss_after_kib", "open", "parked", "got", "armed",
                "ws_kib_per_ws"):
        vals = [p[key] for p in ok if p.get(key) is not None]
        if vals:
            res[key] = statistics.median(vals)
            res[key + "_all"] = vals
    notes = []
    for p in ok:
        for n in p.get("notes", []):
            if n not in notes:
                notes.append(n)
    if kind == "ws-bcast" and any(p["got"] < p["armed"] for p in ok):
        notes.append("a broadcast did not reach every client: "
                     + ", ".join(f"{p['got']:,}/{p['armed']:,}" for p in ok))
    res["note"] = "; ".join(notes)
    return res


def ratios(pairs: list[Pair], kind: str, round_no: int, got: dict) -> None:
    for p in pairs:
        a, b = got.get(p.row), got.get(p.baseline)
        if not a or not b or "skipped" in a or "skipped" in b:
            continue
        if max(a["waited"], b["waited"]) > MARK_OTHERS:
            p.marked.append(round_no)
        for f in FIGURES[kind]:
            if a.get(f) and b.get(f):
                p.ratios.setdefault(f, []).append(a[f] / b[f])


def run_idle(rows: list[Scenario], st: Settings, pairs: list[Pair], rounds: int) -> dict:
    parts: dict[str, list] = {sc.name: [] for sc in rows}
    argv = {}
    for i in range(1, rounds + 1):
        got = {}
        for sc in rows:
            try:
                srv = start(sc, st)
            except Exception as e:  # noqa: BLE001 - reported in the row
                got[sc.name] = {"skipped": f"start failed: {first_line(e)}"}
                parts[sc.name].append(got[sc.name])
                continue
            argv[sc.name] = srv.argv
            try:
                got[sc.name] = measure_idle(sc, st, srv)
            except Exception as e:  # noqa: BLE001
                got[sc.name] = {"skipped": f"measure failed: {first_line(e)}"}
            finally:
                srv.stop()
            parts[sc.name].append(got[sc.name])
        ratios(pairs, "ws-idle", i, got)
    return {n: summarise("ws-idle", parts[n], argv.get(n)) for n in parts}


def run_broadcast(rows: list[Scenario], st: Settings, pairs: list[Pair], rounds: int) -> dict:
    parts: dict[str, list] = {sc.name: [] for sc in rows}
    servers, fleets, argv, setup = {}, {}, {}, {}
    try:
        for sc in rows:  # every server up with its websockets open, one after the other
            try:
                srv = servers[sc.name] = start(sc, st)
                argv[sc.name] = srv.argv
                time.sleep(SETTLE_S)
                before = workers_rss_kib(srv)
                fleet = fleets[sc.name] = Fleet(st, srv, sc,
                                                log=srv.log_path.with_suffix(".clients"))
                opened = fleet.opened()
                parked = wait_parked(srv, opened["open"])
                after = workers_rss_kib(srv)
                setup[sc.name] = {"open": opened["open"], "parked": parked,
                                  "open_s": opened["open_s"],
                                  "notes": fleet_notes(opened, parked)}
                if before and after and parked:
                    setup[sc.name]["ws_kib_per_ws"] = (after - before) / parked
                measure_broadcast(sc, fleet, srv)  # warm-up: first sends, uWSGI's first pings
            except Exception as e:  # noqa: BLE001
                parts[sc.name].append({"skipped": f"setup failed: {first_line(e)}"})
        for i in range(1, rounds + 1):
            got = {}
            for sc in rows:
                if sc.name not in setup:
                    continue
                try:
                    got[sc.name] = {**setup[sc.name],
                                    **measure_broadcast(sc, fleets[sc.name], servers[sc.name])}
                except Exception as e:  # noqa: BLE001
                    got[sc.name] = {"skipped": f"measure failed: {first_line(e)}"}
                parts[sc.name].append(got[sc.name])
            ratios(pairs, "ws-bcast", i, got)
    finally:
        for name, fleet in fleets.items():
            fleet.close()
        for srv in servers.values():
            srv.stop()
    return {n: summarise("ws-bcast", parts[n], argv.get(n)) for n in parts}


def first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [repr(e)])[0]


def run_ws(scenarios: list[Scenario], targets, st: Settings, rounds: int) -> tuple[dict, list]:
    """Every selected ws row: {name: result}, and the Pairs of their ratio targets."""
    done, pairs = {}, []
    for kind, runner, most in (("ws-idle", run_idle, IDLE_ROUNDS),
                               ("ws-bcast", run_broadcast, None)):
        rows = [sc for sc in scenarios if sc.kind == kind]
        if not rows:
            continue
        n = max(1, rounds if most is None else min(rounds, most))
        kind_pairs = group_pairs(rows, targets)
        print(f"== {kind}: {', '.join(sc.name for sc in rows)}, {n} alternating rounds ...",
              end="", flush=True)
        t0 = time.monotonic()
        got = runner(rows, st, kind_pairs, n)
        print(f" {time.monotonic() - t0:.0f} s" + "".join(
            f"; {p.row.split('/')[1]}/{p.baseline.split('/')[1]} {f}: {p.median(f):.2f}×"
            for p in kind_pairs for f in p.ratios))
        done.update(got)
        pairs += kind_pairs
    return done, pairs
