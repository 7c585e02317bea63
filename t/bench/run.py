#!/usr/bin/python3
"""Side-by-side benchmark: spindle against the servers it is modelled on.

Every row of the table is one Scenario (scenarios.py): an app, a way to start
a server on it, and the load to put on it.  For a throughput row the server
is pinned to one CPU and wrk to another, warmed up, then measured: wrk's
req/s and latency percentiles, and the CPU time the server's worker (and
master) burnt during the measured run, per request.  Other rows measure the
memory of requests parked at once (parked.py), the suspend+resume cost
(probes.py), or check a peer's mode (probes.py).  Targets then put a figure of
a spindle row against a bound or against a baseline row.

    /usr/bin/python3 t/bench/run.py [--duration S] [--only NAME[,NAME]] [--no-write]

A target miss is reported (MISS), never turned into a failing exit status;
the exit status is non-zero only when the harness itself cannot run.

To add a row: write a start function (or reuse start_spindle/start_uwsgi/
start_gunicorn with different flags, common.py), append a Scenario to
SCENARIOS, and if it is judged, a Target to TARGETS (scenarios.py).  A row
that measures something other than throughput sets its own `measure`
function and `kind` (the table it goes to).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import RESULTS, ROOT, Settings, run_scenario  # noqa: E402
from pairs import merged, pairs_of, pairs_table, run_pair  # noqa: E402
from report import (fmt, parked_table, probe_lines, results_table, switch_table,  # noqa: E402
                    targets_table, write_results, ws_table)
from scenarios import SCENARIOS, TARGETS  # noqa: E402
from ws_rows import run_ws  # noqa: E402

NOFILE = 32768  # descriptors per process asked for (see main)


def summary(r: dict, kind: str) -> str:
    if kind == "wrk":
        return " {:,.0f} req/s, p99 {:.3f} ms, {} µs CPU/req".format(
            r["rps"], r.get("p99_ms", float("nan")), fmt(r.get("worker_us_per_req"), ".1f"))
    if kind == "parked":
        return " {} parked, {} KiB each{}".format(
            fmt(r.get("parked"), ","), fmt(r.get("kib_per_parked"), ".2f"),
            f" ({r['note']})" if r.get("note") else "")
    if kind == "switch":
        return f" {r['ns']:.1f} ns per round trip"
    return " " + "; ".join(r.get("findings", []))


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
                    help="measured runs per throughput row; keep the one least disturbed (1)")
    ap.add_argument("--no-retry", action="store_true",
                    help="do not measure a throughput row again when other load disturbed it")
    ap.add_argument("--rounds", type=int, default=5,
                    help="alternating rounds per side-by-side pair (5; 0: measure rows one by one)")
    ap.add_argument("--slice", type=int, default=2,
                    help="seconds per server per round of a pair (2)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print wrk's output per row")
    args = ap.parse_args()

    if args.list:
        for sc in SCENARIOS:
            print(f"{sc.name:32} {sc.server}")
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
    # Many-connection rows need descriptors (the parked rows open 10,000 client
    # sockets here); raise the soft limit for us and our children.
    # A parked uWSGI request holds two (its socket and its timerfd), so ask for
    # more than 20,000 where the hard limit may be raised (as root).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, NOFILE), max(hard, NOFILE)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if limit < 10_100:
        print(f"RLIMIT_NOFILE is {limit}: the parked rows need 10,100 descriptors or more",
              file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="spindle-bench-") as tmp:
        st = Settings(duration=args.duration, warmup=args.warmup,
                      server_cpu=(args.server_cpu or None) if pin else None,
                      client_cpu=(args.client_cpu or None) if pin else None,
                      spindle=args.spindle.resolve(), workdir=Path(tmp), verbose=args.verbose,
                      repeat=args.repeat, retry_disturbed=not args.no_retry,
                      pair_rounds=args.rounds, pair_slice=args.slice)
        pairs = pairs_of(TARGETS, scenarios) if args.rounds > 0 else []
        paired = {n for p in pairs for n in p}
        by_name = {sc.name: sc for sc in scenarios}
        done = {}
        for sc in scenarios:
            if sc.name in paired or sc.kind.startswith("ws-"):
                continue  # measured in alternating rounds below
            print(f"== {sc.name} ({sc.server}) ...", end="", flush=True)
            r = run_scenario(sc, st)
            done[sc.name] = r
            if "skipped" in r:
                print(f" SKIPPED: {r['skipped']}")
                if args.verbose and r.get("log"):
                    print(r["log"])
            else:
                print(summary(r, sc.kind))
                if args.verbose and r.get("wrk_output"):
                    print(r["wrk_output"])
        slices, argv, measured = {}, {}, []
        for a, b in pairs:
            print(f"== {a} vs {b}, {args.rounds} alternating rounds of {args.slice} s ...",
                  end="", flush=True)
            p = run_pair(by_name[a], by_name[b], st, args.rounds, args.slice, slices, argv)
            measured.append(p)
            print(f" SKIPPED: {p.skipped}" if p.skipped else "".join(
                f" {f}: {p.median(f):.2f}× (spread {(p.spread(f) or 0) * 100:.0f}%)"
                for f in p.ratios))
        ws_done, ws_pairs = run_ws(scenarios, TARGETS, st, args.rounds)
        done.update(ws_done)
        measured += ws_pairs
        for name in paired:
            if name in slices:
                done[name] = merged(by_name[name], slices[name], argv[name],
                                    f"{len(slices[name])} alternating slices")
            else:
                done[name] = {"skipped": "its pair did not run"}
        rows = [(sc, done[sc.name]) for sc in scenarios if sc.name in done]
        pair_lines = pairs_table(measured)

    table = results_table(rows)
    results = {sc.name: r for sc, r in rows}
    comp, verdicts = targets_table(TARGETS, results, {(p.row, p.baseline): p for p in measured})
    for title, lines in (("", table), ("side by side, alternating rounds", pair_lines),
                         ("parked memory", parked_table(rows)),
                         ("websockets", ws_table(rows)),
                         ("switch cost", switch_table(rows)), ("", probe_lines(rows))):
        if len(lines) > 2 or (lines and not lines[0].startswith("|")):
            print()
            if title:
                print(title)
            print("\n".join(lines))
    if verdicts:
        print()
        print("targets (a ratio is spindle / the row under 'against')")
        print("\n".join(comp))
    if not args.no_write:
        write_results(st, rows, table, comp, pair_lines)
        print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
