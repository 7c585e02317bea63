"""Rows that are not load tests: the switch microbenchmarks, and a check of
uWSGI's uGreen async mode (why uWSGI's async sleep row runs on --greenlet).
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from typing import Optional

from common import ROOT, Running, Scenario, Settings, http_get, pinned

BUILD = ROOT / "build" / "bench"
OVERLAP = 100          # requests at once in the uGreen check (20 at once did not crash)
SWITCH_RE = re.compile(r"([\d.]+) ns per")


def switch_bench(binary: str, round_trips: int = 10_000_000):
    """A `measure` that runs build/bench/BINARY on the server's CPU and reads its ns per round trip."""
    def measure(sc: Scenario, st: Settings, srv: Optional[Running]) -> dict:
        path = BUILD / binary
        if not path.exists():
            return {"skipped": f"{path.relative_to(ROOT)} not built (make bench builds it)"}
        argv = pinned(st.server_cpu, [str(path), str(round_trips)])
        # Best of three: the figure is a floor, and other load only adds to it.
        outs = [subprocess.run(argv, capture_output=True, text=True, timeout=120) for _ in range(3)]
        values = []
        for out in outs:
            m = SWITCH_RE.search(out.stdout)
            if out.returncode != 0 or not m:
                return {"skipped": f"{binary} failed ({out.returncode}): "
                                   f"{(out.stderr or out.stdout).strip()[:200]}"}
            values.append(float(m.group(1)))
        return {"ns": min(values), "ns_all": values, "output": outs[0].stdout.strip(),
                "command": argv}
    return measure


def concurrent_get(port: int, path: str, n: int, timeout: float) -> list:
    """n GETs at once (one thread each); each result is (status, body) or the exception."""
    results: list = [None] * n

    def one(i: int) -> None:
        try:
            results[i] = http_get(port, path, timeout=timeout)
        except Exception as e:  # noqa: BLE001 - a dropped connection is the finding
            results[i] = e
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return results


def slept(result) -> Optional[float]:
    if isinstance(result, tuple) and result[0] == 200:
        m = re.match(rb"slept ([\d.]+)", result[1])
        return float(m.group(1)) if m else None
    return None


def measure_ugreen(sc: Scenario, st: Settings, srv: Running) -> dict:
    """uwsgi.async_sleep(0.1), alone; then OVERLAP overlapping 1 s sleeps in each spelling."""
    res: dict = {}
    single = slept(http_get(srv.port, "/?s=0.1", timeout=5))
    res["sleep_0_1"] = single
    overlap_yield = concurrent_get(srv.port, "/?s=1", OVERLAP, timeout=5)
    res["yield_ok"] = sum(1 for r in overlap_yield if slept(r) is not None)
    crashes_before = srv.log_path.read_text(errors="replace").count("Segmentation Fault")
    overlap_suspend = concurrent_get(srv.port, "/suspend?s=1", OVERLAP, timeout=5)
    time.sleep(0.5)
    log = srv.log_path.read_text(errors="replace")
    res["suspend_ok"] = sum(1 for r in overlap_suspend if slept(r) is not None)
    res["segfaults_yield"] = crashes_before
    res["segfaults_suspend"] = log.count("Segmentation Fault") - crashes_before
    findings = []
    if single is not None:
        findings.append(f"`uwsgi.async_sleep(0.1)` slept {single:.3f} s"
                        + (" (whole seconds only: 0.1 s truncates to 0)" if single < 0.05 else ""))
    findings.append(f"{OVERLAP} overlapping 1 s sleeps, `async_sleep` + `yield b\"\"`: "
                    f"{res['yield_ok']}/{OVERLAP} answered, {res['segfaults_yield']} worker segfaults")
    findings.append(f"{OVERLAP} overlapping 1 s sleeps, `async_sleep` + `uwsgi.suspend()`: "
                    f"{res['suspend_ok']}/{OVERLAP} answered, {res['segfaults_suspend']} worker segfaults"
                    + (" (\"uWSGI process N got Segmentation Fault\"" +
                       (", backtrace through async_schedule_to_req_green"
                        if "async_schedule_to_req_green" in log else "") + ")"
                       if res["segfaults_suspend"] else ""))
    res["findings"] = findings
    return res
