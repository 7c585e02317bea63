"""Tables for stdout and t/bench/RESULTS.md."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from typing import Optional

from common import DISTURBED, MARK_OTHERS, RESULTS, ROOT, Scenario, Settings
from parked import PARKED, SLEEP_S
from ws_rows import SOCKETS
from scenarios import UNITS, Target

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
    if r.get("remeasured"):
        notes.append(f"measured again after a disturbed run; least disturbed of {r['runs']} kept")
    if r.get("note"):
        notes.append(r["note"])
    return notes


def results_table(rows: list[tuple[Scenario, dict]]) -> list[str]:
    out = ["| scenario | server | req/s | p50 ms | p99 ms | worker CPU µs/req | "
           "master CPU µs/req | worker CPU use | others on its CPU | errors | note |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for sc, r in wrk_rows(rows):
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
            "-" if others is None else f"{others * 100:.0f}%{' ⚠' if others > MARK_OTHERS else ''}",
            r.get("errors", "-"), "; ".join(row_notes(sc, r))))
    return out


def wrk_rows(rows):
    return [(sc, r) for sc, r in rows if sc.kind == "wrk"]


def parked_table(rows) -> list[str]:
    out = ["| scenario | server | parked | time to park s | plain worker RSS MiB | "
           "RSS parked MiB | growth MiB | KiB per parked request | note |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for sc, r in rows:
        if sc.kind != "parked":
            continue
        if "skipped" in r:
            out.append(f"| {sc.name} | {sc.server} | - | - | - | - | - | - | SKIPPED: {r['skipped']} |")
            continue
        before, after = r.get("rss_before_kib"), r.get("rss_parked_kib")
        notes = [r["note"]] if r.get("note") else []
        if r.get("connect_failed"):
            notes.append(f"{r['connect_failed']:,} connects failed")
        if r.get("answered_early"):
            notes.append(f"{r['answered_early']:,} answered or closed early")
        out.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            sc.name, sc.server, fmt(r.get("parked"), ","), fmt(r.get("park_s"), ".1f"),
            fmt(before / 1024 if before else None, ".1f"),
            fmt(after / 1024 if after else None, ".1f"),
            fmt((after - before) / 1024 if before and after else None, ".1f"),
            fmt(r.get("kib_per_parked"), ".2f"), "; ".join(notes)))
    return out


def rounds_cell(r: dict, key: str, spec: str) -> str:
    """The median, and every round's value when there are several."""
    vals = r.get(key + "_all", [])
    med = fmt(r.get(key), spec)
    return med if len(vals) < 2 else f"{med} ({', '.join(format(v, spec) for v in vals)})"


def ws_idle_table(rows) -> list[str]:
    out = ["| scenario | server | websockets | time to open s | plain worker RSS MiB | "
           "RSS with them MiB | KiB per idle websocket (rounds) | note |",
           "|---|---|---:|---:|---:|---:|---:|---|"]
    for sc, r in rows:
        if sc.kind != "ws-idle":
            continue
        if "skipped" in r:
            out.append(f"| {sc.name} | {sc.server} | - | - | - | - | - | SKIPPED: {r['skipped']} |")
            continue
        before, after = r.get("rss_before_kib"), r.get("rss_after_kib")
        notes = [r["note"]] if r.get("note") else []
        if r.get("waited", 0) > MARK_OTHERS:
            notes.append(f"⚠ the worker waited for a CPU {r['waited'] * 100:.0f}% of the time")
        out.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            sc.name, sc.server, fmt(r.get("parked"), ",.0f"), fmt(r.get("open_s"), ".1f"),
            fmt(before / 1024 if before else None, ".1f"),
            fmt(after / 1024 if after else None, ".1f"),
            rounds_cell(r, "kib_per_ws", ".2f"), "; ".join(notes)))
    return out


def ws_bcast_table(rows) -> list[str]:
    out = ["| scenario | server | websockets | ms until the last has it (rounds) | "
           "ms until the first | ms until the clients read the last | "
           "worker CPU ms (rounds) | KiB per websocket | note |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for sc, r in rows:
        if sc.kind != "ws-bcast":
            continue
        if "skipped" in r:
            out.append(f"| {sc.name} | {sc.server} | - | - | - | - | - | - | "
                       f"SKIPPED: {r['skipped']} |")
            continue
        notes = [r["note"]] if r.get("note") else []
        if r.get("waited", 0) > MARK_OTHERS:
            notes.append(f"⚠ the worker waited for a CPU {r['waited'] * 100:.0f}% of a broadcast")
        out.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            sc.name, sc.server, fmt(r.get("got"), ",.0f"), rounds_cell(r, "bcast_ms", ".1f"),
            fmt(r.get("first_ms"), ".2f"), fmt(r.get("app_ms"), ".1f"),
            rounds_cell(r, "cpu_ms", ".1f"), fmt(r.get("ws_kib_per_ws"), ".2f"),
            "; ".join(notes)))
    return out


def ws_table(rows) -> list[str]:
    idle, bcast = ws_idle_table(rows), ws_bcast_table(rows)
    return (idle if len(idle) > 2 else []) + ([""] if len(idle) > 2 and len(bcast) > 2 else []) \
        + (bcast if len(bcast) > 2 else [])


def switch_table(rows) -> list[str]:
    out = ["| benchmark | what | ns per suspend+resume (best of 3) | all runs | command |",
           "|---|---|---:|---|---|"]
    for sc, r in rows:
        if sc.kind != "switch":
            continue
        if "skipped" in r:
            out.append(f"| {sc.name} | {sc.server} | - | - | SKIPPED: {r['skipped']} |")
            continue
        out.append("| {} | {} | {:.1f} | {} | `{}` |".format(
            sc.name, sc.server, r["ns"], ", ".join(f"{v:.1f}" for v in r["ns_all"]),
            shell_line(r["command"])))
    return out


def probe_lines(rows) -> list[str]:
    out = []
    for sc, r in rows:
        if sc.kind != "probe":
            continue
        out.append(f"`{sc.name}` ({sc.server}, app `{shell_line([str(sc.app)])}`):")
        if "skipped" in r:
            out.append(f"- SKIPPED: {r['skipped']}")
        for f in r.get("findings", []):
            out.append(f"- {f}")
        out.append("")
    return out


def target_value(t: Target, results: dict, pairs: Optional[dict] = None
                 ) -> tuple[Optional[float], str]:
    """The figure a target checks, and why it is missing if it is. A ratio
    measured in alternating rounds (pairs.py) is the median of the rounds'."""
    pair = (pairs or {}).get((t.row, t.baseline))
    if pair is not None and t.metric in pair.ratios:
        return pair.median(t.metric), ""
    a = results.get(t.row)
    b = results.get(t.baseline) if t.baseline else None
    if a is None or (t.baseline and b is None):
        return None, "not run"
    if "skipped" in a or (b is not None and "skipped" in b):
        return None, "row skipped"
    va = a.get(t.metric)
    if b is None:
        return va, "" if va is not None else "no figure"
    vb = b.get(t.baseline_metric or t.metric)
    if va is None or not vb:
        return None, "no figure"
    return va / vb, ""


def targets_table(targets: list[Target], results: dict, pairs: Optional[dict] = None
                  ) -> tuple[list[str], list[str]]:
    out = ["| spindle row | figure | against | value | rounds' spread | target | verdict |",
           "|---|---|---|---:|---:|---|---|"]
    verdicts = []
    for t in targets:
        if t.row not in results and (t.baseline is None or t.baseline not in results):
            continue
        v, why = target_value(t, results, pairs)
        pair = (pairs or {}).get((t.row, t.baseline))
        spread = pair.spread(t.metric) if pair is not None and t.metric in pair.ratios else None
        spread_cell = "-" if spread is None else f"{spread * 100:.0f}%" + (
            " ⚠" if pair.marked else "")
        sym = {">=": "≥", "<=": "≤", "<": "<", "": ""}[t.op]
        unit = "×" if t.baseline else ""
        if v is None:
            verdict = f"n/a ({why})"
        elif t.bound is None:
            verdict = "(info)"
        else:
            ok = {">=": v >= t.bound, "<=": v <= t.bound, "<": v < t.bound}[t.op]
            verdict = "PASS" if ok else "MISS"
            verdicts.append(verdict)
        spec = ".2f" if t.baseline or v is None or abs(v) < 1000 else ",.0f"
        goal = "-" if t.bound is None else f"{sym} {t.bound:g}{unit}"
        out.append(f"| {t.row} | {UNITS.get(t.metric, t.metric)}"
                   f"{' ratio' if t.baseline else ''} | {t.baseline or '-'} | "
                   f"{fmt(v, spec)}{unit if v is not None else ''} | {spread_cell} | {goal} | "
                   f"{verdict} |")
    return out, verdicts


def first_line(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (r.stdout + r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def module_versions() -> str:
    out = subprocess.run(
        ["/usr/bin/python3", "-c", "import importlib.metadata as m\n"
         "for n in ('gunicorn', 'gevent', 'greenlet', 'tornado'):\n"
         "    try: print(n, m.version(n))\n"
         "    except Exception: print(n, 'missing')"],
        capture_output=True, text=True, timeout=20)
    return ", ".join(out.stdout.split("\n")[:-1]) or "unknown"


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
        f"- Python: {first_line(['/usr/bin/python3', '--version'])}; "
        f"{module_versions()}",
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


def ceiling(duration: float, overhead: float, conns: int = 1000, wait: float = 0.1) -> float:
    """Best req/s of a closed loop of conns connections that each wait `wait` per request."""
    return conns * int(duration / (wait + overhead)) / duration


WS_TEXT = [
    f"{SOCKETS:,} websockets open at once on one worker, opened by `ws_clients.py` processes "
    "(raw sockets and epoll, a few hundred handshakes under way at a time, pings answered). "
    "**ws-idle**: the worker's VmRSS as started (same flags, before any request) and once the "
    "app's own counter shows every websocket parked in its receive call; each round starts the "
    "server afresh. **ws-bcast**: every server keeps its websockets open through the rounds; "
    "in a round each server in turn gets one broadcast: a client sends `go`, the app sends it "
    "to all of them, timed from that send until the kernel queued it on the last client's "
    "socket (SO_TIMESTAMPNS: the clients' own speed does not count; the time until they had "
    "read it is beside it), with the worker's CPU time over the broadcast (schedstat, ns). "
    "Rows alternate within each round; the ratios are in the side-by-side table. ⚠: the "
    "worker waited for a CPU (run delay) more than 5% of the measured time.",
    "",
    "The apps (`t/bench/apps/`): `ws_idle.py` (uWSGI's API, run unchanged by spindle and "
    "uWSGI) and `ws_idle_gevent.py` echo what they get; `ws_broadcast_gevent.py` keeps a set "
    "of gevent-websocket objects and sends in a loop; `ws_broadcast_uwsgi.py` wakes each "
    "request's greenlet with a gevent Event (uWSGI 2.0's `websocket_send` acts on the calling "
    "request only); `ws_broadcast_spindle.py` keeps a set of `spindle.websocket()` objects "
    "and sends in a loop, as the gevent app does.",
]


def write_results(st: Settings, rows, table, comp, pair_lines=()) -> None:
    lines = ["# spindle benchmark results", "",
             "Written by `t/bench/run.py` (`make bench`); see `t/bench/README.md` for how to read it.",
             "", "## Machine", "", *machine_info(st), ""]
    if wrk_rows(rows):
        lines += ["## Throughput", "",
                  "hello/chunks: 50 connections, default engines. sleep/*: 100 ms sleep per "
                  "request, 1,000 connections, 1 worker with 1,000 async cores (gunicorn: "
                  "1,000 worker connections). tornado/*: Tornado's IOLoop as the loop engine, "
                  "1,000 connections, 1 worker with 1,000 cores.",
                  "",
                  "A run of D seconds with 1,000 connections that each wait 100 ms per request "
                  "cannot pass 1,000 × ⌊D / (0.1 s + overhead)⌋ / D requests per second: "
                  f"{ceiling(st.duration, 0.001):,.0f} req/s at {st.duration} s with 1 ms of "
                  f"overhead per request, {ceiling(st.duration, 0.002):,.0f} with 2 ms (wrk "
                  "counts from the start, before the first answers).", "", *table, ""]
    if len(pair_lines) > 2:
        lines += ["## Side by side, in alternating rounds", "",
                  "Each pair judged by a ratio runs both servers at once and measures them in "
                  f"turns (A, B, A, B…), {st.pair_rounds} rounds of {st.pair_slice} s each after "
                  "a warm-up of each; a round's ratio is A / B in that round. The verdict takes "
                  "the median; the spread is (max − min) / median. `*`: a round in which other "
                  "processes took more than 5% of the server's CPU. The throughput table's line "
                  "for a paired row sums its slices.", "", *pair_lines, ""]
    disturbed = [sc.name for sc, r in wrk_rows(rows) if r.get("others_util", 0.0) > MARK_OTHERS]
    if disturbed:
        lines += [f"Disturbed (⚠): on {len(disturbed)} of {len(wrk_rows(rows))} rows other load took "
                  f"over 5% of the server's CPU (load average {os.getloadavg()[0]:.1f} at the "
                  f"end: {', '.join(disturbed)}), so their req/s and latency understate the "
                  "server; CPU per request holds up better. Rerun on a quiet machine for figures "
                  "to quote.", ""]
    if any(sc.kind == "parked" for sc, _ in rows):
        lines += ["## Parked memory", "",
                  f"{PARKED:,} requests asleep at once ({SLEEP_S} s each) on one worker, opened "
                  "by the benchmark itself in batches (c100k/fds: as many as the descriptor "
                  "limit allows; c100k/cores: 100,000 cores parked by the app itself, no "
                  "sockets); worker VmRSS of the plain worker (same --async, before any "
                  "request) and once the app's own counter shows them all parked.", "",
                  *parked_table(rows), ""]
    if any(sc.kind.startswith("ws-") for sc, _ in rows):
        lines += ["## Websockets", "", *WS_TEXT, ""]
        idle, bcast = ws_idle_table(rows), ws_bcast_table(rows)
        if len(idle) > 2:
            lines += [*idle, ""]
        if len(bcast) > 2:
            lines += [*bcast, ""]
    if any(sc.kind == "switch" for sc, _ in rows):
        lines += ["## Switch cost", "", *switch_table(rows), ""]
    if any(sc.kind == "probe" for sc, _ in rows):
        lines += ["## uWSGI --ugreen (checked on every run)", "",
                  "Why uWSGI's async sleep row runs `--async 1000 --greenlet` with a timerfd "
                  "sleep (`uwsgi.wait_fd_read` + `yield b\"\"`) instead of `--ugreen` with "
                  "`uwsgi.async_sleep`:", "", *probe_lines(rows),
                  "The crash needs enough overlap: in trials 20 `uwsgi.suspend()` requests at "
                  "once were answered and 50 crashed the worker, hence 100 here.", ""]
    if len(comp) > 2:
        lines += ["## Targets", "",
                  "A ratio is spindle / the row named under *against*.", "", *comp, ""]
    lines += ["## Commands", "", "Ports are chosen at run time (spindle binds port 0 and reports it; the "
              "others get a free port found beforehand); those shown are the ones used.", ""]
    for sc, r in rows:
        if "server_argv" in r:
            lines += [f"- `{sc.name}`", f"  - server: `{shell_line(r['server_argv'])}`"]
            if "wrk_argv" in r:
                lines.append(f"  - load: `{shell_line(r['wrk_argv'])}` (after a "
                             f"{st.warmup:g} s warm-up with the same arguments)")
            elif sc.kind.startswith("ws-"):
                lines.append(f"  - load: {SOCKETS:,} websockets from `t/bench/ws_clients.py` "
                             f"processes (`{sc.path}`)")
            elif sc.kind == "parked":
                lines.append(f"  - load: {PARKED:,} connections from the benchmark process, "
                             f"each sending `GET /?s={SLEEP_S}` (after a {st.warmup:g} s "
                             "`wrk -t1 -c50` warm-up on `/?s=0.01`)")
    lines.append("")
    RESULTS.write_text("\n".join(lines))
