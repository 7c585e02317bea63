"""Side-by-side pairs, measured alternately in the same window.

A target that puts one throughput row against another (a ratio) is not
judged from two runs minutes apart: on a shared machine one busy moment would
decide it.  Both servers are started, each is warmed up, then they are
measured in turns -- A, B, A, B... for `rounds` rounds of `slice` seconds
each -- and every round gives its own ratio.  The verdict takes the median;
the table shows each round's ratio and the spread, and marks the rounds in
which other processes took more than 5% of the server's CPU (`*`).

A row's own line in the throughput table is then the sum of its slices (all
pairs it took part in): requests and CPU added up, latency percentiles the
median of the slices'.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Optional

from common import MARK_OTHERS, Running, Scenario, Settings, http_get, measure_wrk, wrk_argv

FIGURES = ("rps", "worker_us_per_req")
FIGURE_NAMES = {"rps": "req/s", "worker_us_per_req": "CPU/req",
                "kib_per_ws": "KiB per idle websocket", "bcast_ms": "broadcast ms",
                "cpu_ms": "worker CPU ms per broadcast"}


@dataclasses.dataclass
class Pair:
    row: str
    baseline: str
    ratios: dict = dataclasses.field(default_factory=dict)  # figure -> per-round ratios
    marked: list = dataclasses.field(default_factory=list)  # round numbers disturbed > 5%
    skipped: str = ""
    mark_note: str = "others took > 5% of the server's CPU"  # what a marked round means

    def median(self, figure: str) -> Optional[float]:
        v = self.ratios.get(figure)
        return statistics.median(v) if v else None

    def spread(self, figure: str) -> Optional[float]:
        """(max - min) / median of the per-round ratios."""
        v = self.ratios.get(figure)
        if not v or len(v) < 2:
            return None
        return (max(v) - min(v)) / statistics.median(v)


def pairs_of(targets, scenarios: list[Scenario]) -> list[tuple[str, str]]:
    """(row, baseline) for every ratio target whose two rows are selected throughput rows."""
    wrk = {sc.name for sc in scenarios if sc.kind == "wrk" and sc.start is not None}
    seen = []
    for t in targets:
        if t.baseline and t.row in wrk and t.baseline in wrk and (t.row, t.baseline) not in seen:
            seen.append((t.row, t.baseline))
    return seen


def start_checked(sc: Scenario, st: Settings) -> Running:
    log_path = st.workdir / (sc.name.replace("/", "_") + ".log")
    srv = sc.start(sc, st, log_path)
    if sc.expect is not None:
        status, body = http_get(srv.port, sc.path)
        if status != 200 or body != sc.expect:
            srv.stop()
            raise RuntimeError(f"wrong response: {status} {body[:80]!r}")
    return srv


def run_pair(a: Scenario, b: Scenario, st: Settings, rounds: int, slice_s: int,
             slices: dict, argv: dict) -> Pair:
    """Measures a and b in turns; appends each slice's result to slices[name]."""
    pair = Pair(a.name, b.name)
    servers = []
    try:
        for sc in (a, b):
            srv = start_checked(sc, st)
            servers.append(srv)
            argv[sc.name] = (srv.argv, wrk_argv(st, sc, srv.port, slice_s))
        turn = dataclasses.replace(st, warmup=0, duration=slice_s)
        for sc, srv in zip((a, b), servers):  # warm both before the first turn
            if st.warmup > 0:
                measure_wrk(sc, dataclasses.replace(st, warmup=0, duration=st.warmup), srv)
        for i in range(rounds):
            ra = measure_wrk(a, turn, srv=servers[0])
            rb = measure_wrk(b, turn, srv=servers[1])
            for sc, r in ((a, ra), (b, rb)):
                r.pop("wrk_output", None)
                slices.setdefault(sc.name, []).append(r)
            if max(ra.get("others_util", 0.0), rb.get("others_util", 0.0)) > MARK_OTHERS:
                pair.marked.append(i + 1)
            for f in FIGURES:
                if ra.get(f) and rb.get(f):
                    pair.ratios.setdefault(f, []).append(ra[f] / rb[f])
    except Exception as e:  # noqa: BLE001 - a pair that cannot run is reported
        pair.skipped = (str(e).strip().splitlines() or [repr(e)])[0]
    finally:
        for srv in servers:
            srv.stop()
    return pair


def merged(sc: Scenario, parts: list[dict], argv: tuple, rounds_note: str) -> dict:
    """One table row from the slices a row was measured in."""
    n = sum(p.get("requests", 0) for p in parts)
    secs = sum(p.get("duration_s", 0) for p in parts)
    cpu = sum(p.get("worker_cpu_s", 0.0) for p in parts)
    master = sum(p.get("master_cpu_s", 0.0) for p in parts)
    res = {"server_argv": argv[0], "wrk_argv": argv[1], "requests": n,
           "rps": n / secs if secs else None, "errors": sum(p.get("errors", 0) for p in parts),
           "others_util": max(p.get("others_util", 0.0) for p in parts),
           "slices": len(parts), "note": rounds_note}
    for k in ("p50_ms", "p99_ms"):
        vals = [p[k] for p in parts if k in p]
        if vals:
            res[k] = statistics.median(vals)
    for k in ("reconnects", "timeouts", "read_errors", "non2xx"):
        if any(k in p for p in parts):
            res[k] = sum(p.get(k, 0) for p in parts)
    if n:
        res["worker_us_per_req"] = cpu / n * 1e6
        res["master_us_per_req"] = master / n * 1e6
        res["server_us_per_req"] = (cpu + master) / n * 1e6
    if secs:
        res["worker_util"] = cpu / secs
    return res


def pairs_table(pairs: list[Pair]) -> list[str]:
    out = ["| row | against | figure | per-round ratios (A/B) | median | spread | note |",
           "|---|---|---|---|---:|---:|---|"]
    for p in pairs:
        if p.skipped:
            out.append(f"| {p.row} | {p.baseline} | - | - | - | - | SKIPPED: {p.skipped} |")
            continue
        for f in (p.ratios or FIGURES):  # a pair's figures, in the order measured
            v = p.ratios.get(f, [])
            cells = ", ".join(f"{x:.2f}{'*' if i + 1 in p.marked else ''}" for i, x in enumerate(v))
            med, spr = p.median(f), p.spread(f)
            note = (f"* rounds {', '.join(map(str, p.marked))}: {p.mark_note}"
                    if p.marked else "")
            out.append(f"| {p.row} | {p.baseline} | {FIGURE_NAMES.get(f, f)} | {cells or '-'} | "
                       f"{'-' if med is None else f'{med:.2f}×'} | "
                       f"{'-' if spr is None else f'{spr * 100:.0f}%'} | {note} |")
    return out
