"""The rows of `make bench` and the targets they are judged by.

A Scenario is one server on one app under one load; a Target checks one
figure of a spindle row, either against a bound or, with a baseline row, as
a ratio spindle / baseline.
"""

from __future__ import annotations

import dataclasses
import signal
from typing import Optional

from common import (APPS, WRK_1000, Scenario, start_gunicorn, start_spindle, start_uwsgi)
from parked import measure_cores, measure_fd_limit, measure_parked, with_counter
from probes import measure_ugreen, switch_bench
from scrape import measure_scraped, start_watched

HELLO = APPS / "hello.py"
CHUNKS = APPS / "chunks.py"
HELLO_BODY = b"Hello, World!\n"
CHUNKS_BODY = b"onetwothree"
SLEEP_SPINDLE = APPS / "sleep_spindle.py"
SLEEP_GEVENT = APPS / "sleep_gevent.py"
SLEEP_TIMERFD = APPS / "sleep_uwsgi_timerfd.py"
SLEEP_UGREEN = APPS / "sleep_ugreen.py"
TIMER_WAIT = APPS / "tornado_timer_wait.py"
SLEEP_THREAD = APPS / "sleep_thread.py"
TIMER_GREENLET = APPS / "tornado_timer_greenlet.py"
SLEPT_BODY = b"slept\n"
TIMER_BODY = b"timer\n"

# uWSGI's --http-socket closes the connection after every response (it
# sends no Connection: close; wrk sees a read error and reconnects), so it
# pays an accept and a close per request.  --http11-socket keeps the
# connection alive instead (a generator needs the chunked transformation for
# that, and --tcp-nodelay, or each chunked response waits out a 40 ms
# delayed ACK) -- but a synchronous worker then serves one connection until
# the client closes it: the other 49 connections of the run wait unanswered
# and wrk's latency figures only cover the one being served.  The
# --http-socket rows are the reference for the targets; the --http11-socket
# rows show uWSGI's keep-alive mode.  The async and Tornado rows use
# --http-socket too: uWSGI's async cores are what is measured there.
UWSGI_HTTP11 = ["--tcp-nodelay"]
UWSGI_CHUNKED = ["--route-run", "chunked:", "--tcp-nodelay"]
CLOSES = "closes after each response"

# 1,000 connections need a backlog above the default 100 (uWSGI refuses one
# above net.core.somaxconn; 1024 is below Debian's 4096).
BACKLOG = ["--listen", "1024"]
SPINDLE_ASYNC = ["--async", "1000", *BACKLOG]
UWSGI_GREENLET = "python3,greenlet_python3"      # Debian's names for the plugins
UWSGI_GEVENT = "python3,gevent_python3"
UWSGI_TORNADO = "python3,tornado_python3,greenlet_python3"
UWSGI_UGREEN = "python3,ugreen"
# Real threads: 2 workers x 4 threads, each request blocking 10 ms in
# time.sleep, so 8 requests at once and at most ~800 req/s; 32 connections
# keep every thread busy.
WRK_THREADS = ["-t1", "-c32", "--latency"]
GUNICORN_GEVENT = ["-k", "gevent", "--worker-connections", "1000", "--backlog", "2048"]

# Parked memory: 10,000 requests asleep at once on one worker.  spindle's and
# uWSGI's backlogs are capped by net.core.somaxconn; the benchmark connects in
# batches and waits for each batch to park.  Stops must not wait out the
# sleepers: spindle gets a short reload mercy, gunicorn SIGQUIT (uWSGI's
# SIGINT already kills its workers).
SPINDLE_PARKED = ["--async", "10000", "--listen", "10000", "--worker-reload-mercy", "1"]
# The C100K rows: as many parked connections as the descriptor limit lets one
# worker hold (--async above it, so the limit decides), and 100,000 cores
# parked in spindle.sleep with no socket at all (apps/park_cores.py).
SPINDLE_FDS = ["--async", "100000", "--listen", "10000", "--worker-reload-mercy", "1"]
SPINDLE_CORES = ["--async", "100010", "--worker-reload-mercy", "1"]
PARK_CORES = APPS / "park_cores.py"
# Each parked uWSGI request holds two descriptors (its socket and its timerfd):
# where the hard limit is 20,000 and cannot be raised, the last few fail with EMFILE.
UWSGI_PARKED = ["--async", "10000", "--greenlet", "--max-fd", "20000", "--listen", "1024"]
GUNICORN_PARKED = ["-k", "gevent", "--worker-connections", "10000", "--backlog", "4096"]

# Websockets: 10,000 open on one worker (ws_rows.py). spindle and uWSGI
# ping a silent websocket every 30 s and the clients answer; gevent-websocket
# does not ping.
WS_IDLE = APPS / "ws_idle.py"                    # uWSGI's API: spindle and uWSGI alike
WS_IDLE_GEVENT = APPS / "ws_idle_gevent.py"
WS_BCAST_SPINDLE = APPS / "ws_broadcast_spindle.py"
WS_BCAST_GEVENT = APPS / "ws_broadcast_gevent.py"
WS_BCAST_UWSGI = APPS / "ws_broadcast_uwsgi.py"
WS_BODY = b"ws\n"
SPINDLE_WS = ["--async", "10000", "--listen", "4096", "--worker-reload-mercy", "1"]
GUNICORN_WS = ["-k", "geventwebsocket.gunicorn.workers.GeventWebSocketWorker",
               "--worker-connections", "10000", "--backlog", "4096"]
UWSGI_WS = ["--gevent", "10000", "--listen", "4096", "--max-fd", "20000"]


def ws_rows(kind: str, spindle_app, gevent_app, uwsgi_app,
            greenlet: bool = False) -> list[Scenario]:
    """One websocket row per server: spindle (and spindle --greenlet), gunicorn's
    GeventWebSocketWorker, uWSGI --gevent."""
    gl = [Scenario(f"{kind}/spindle-greenlet", "spindle --async 10000 --greenlet", spindle_app,
                   with_counter(start_spindle([*SPINDLE_WS, "--greenlet"])), expect=WS_BODY,
                   kind=kind)] if greenlet else []
    return [
        Scenario(f"{kind}/spindle", "spindle --async 10000 (ev, fibers)", spindle_app,
                 with_counter(start_spindle(SPINDLE_WS)), expect=WS_BODY, kind=kind),
        *gl,
        Scenario(f"{kind}/gunicorn-gevent", "gunicorn -k GeventWebSocketWorker", gevent_app,
                 with_counter(start_gunicorn(GUNICORN_WS, stop_signal=signal.SIGQUIT)),
                 expect=WS_BODY, kind=kind),
        Scenario(f"{kind}/uwsgi-gevent", "uWSGI --gevent 10000", uwsgi_app,
                 with_counter(start_uwsgi(UWSGI_WS, plugins=UWSGI_GEVENT)), expect=WS_BODY,
                 kind=kind),
    ]


def tornado_rows(workload: str, spindle_app, uwsgi_app, spindle_fibers_app, body: bytes,
                 libev: bool = True):
    """spindle on Tornado's IOLoop (greenlet and fibers) beside uWSGI's tornado loop engine,
    and (libev=True: apps that need no IOLoop) the same load on the libev engine, which is
    what --tornado should cost."""
    ev_row = [Scenario(f"tornado/{workload}/spindle-ev", "spindle --async 1000 (libev, fibers)",
                       spindle_fibers_app, start_spindle(SPINDLE_ASYNC),
                       wrk_args=list(WRK_1000), expect=body)] if libev else []
    return ev_row + [
        Scenario(f"tornado/{workload}/spindle-greenlet", "spindle --tornado 1000 --greenlet",
                 spindle_app, start_spindle(["--tornado", "1000", "--greenlet", *BACKLOG]),
                 wrk_args=list(WRK_1000), expect=body),
        Scenario(f"tornado/{workload}/spindle-fibers", "spindle --tornado 1000 (fibers)",
                 spindle_fibers_app, start_spindle(["--tornado", "1000", *BACKLOG]),
                 wrk_args=list(WRK_1000), expect=body),
        Scenario(f"tornado/{workload}/uwsgi", "uWSGI --tornado 1000 --greenlet", uwsgi_app,
                 start_uwsgi(["--tornado", "1000", "--greenlet", *BACKLOG], plugins=UWSGI_TORNADO),
                 wrk_args=list(WRK_1000), expect=body, closes=True, note=CLOSES),
    ]


SCENARIOS: list[Scenario] = [
    # --- hello world and a 3-chunk generator, 50 connections, default engines
    Scenario("hello/spindle", "spindle", HELLO, start_spindle(), expect=HELLO_BODY),
    Scenario("hello/spindle-stats", "spindle --stats --metrics, scraped 1/s", HELLO,
             start_watched(), expect=HELLO_BODY, measure=measure_scraped),
    Scenario("hello/uwsgi", "uWSGI --http-socket", HELLO, start_uwsgi(),
             expect=HELLO_BODY, closes=True, note=CLOSES),
    Scenario("hello/uwsgi-http11", "uWSGI --http11-socket", HELLO,
             start_uwsgi(socket_flag="--http11-socket", extra=UWSGI_HTTP11),
             expect=HELLO_BODY, note="keep-alive, one connection at a time"),
    Scenario("hello/spindle-threads4", "spindle --threads 4", HELLO,
             start_spindle(["--threads", "4"]), expect=HELLO_BODY),
    Scenario("chunks/spindle", "spindle", CHUNKS, start_spindle(), expect=CHUNKS_BODY),
    Scenario("chunks/uwsgi", "uWSGI --http-socket", CHUNKS, start_uwsgi(),
             expect=CHUNKS_BODY, closes=True, note=CLOSES),
    Scenario("chunks/uwsgi-http11", "uWSGI --http11-socket + chunked", CHUNKS,
             start_uwsgi(socket_flag="--http11-socket",
                         plugins="python3,transformation_chunked", extra=UWSGI_CHUNKED),
             expect=CHUNKS_BODY, note="keep-alive, chunked, one connection at a time"),
    # --- a 100 ms sleep per request, 1,000 connections, async cores
    Scenario("sleep/spindle", "spindle --async 1000 (fibers)", SLEEP_SPINDLE,
             start_spindle(SPINDLE_ASYNC), wrk_args=list(WRK_1000), expect=SLEPT_BODY),
    Scenario("sleep/uwsgi-greenlet", "uWSGI --async 1000 --greenlet", SLEEP_TIMERFD,
             start_uwsgi(["--async", "1000", "--greenlet", *BACKLOG], plugins=UWSGI_GREENLET),
             wrk_args=list(WRK_1000), expect=SLEPT_BODY, closes=True,
             note=CLOSES + "; timerfd + wait_fd_read"),
    Scenario("sleep/uwsgi-gevent", "uWSGI --gevent 1000", SLEEP_GEVENT,
             start_uwsgi(["--gevent", "1000", *BACKLOG], plugins=UWSGI_GEVENT),
             wrk_args=list(WRK_1000), expect=SLEPT_BODY, closes=True, note=CLOSES),
    Scenario("sleep/gunicorn-gevent", "gunicorn -k gevent", SLEEP_GEVENT,
             start_gunicorn(GUNICORN_GEVENT), wrk_args=list(WRK_1000), expect=SLEPT_BODY),
    # --- 10 ms of time.sleep per request, 2 workers x 4 real threads
    Scenario("threads/spindle", "spindle -p 2 --threads 4", SLEEP_THREAD,
             start_spindle(["--threads", "4"], processes=2), wrk_args=list(WRK_THREADS),
             expect=SLEPT_BODY),
    Scenario("threads/uwsgi", "uWSGI -p 2 --threads 4", SLEEP_THREAD,
             start_uwsgi(["--threads", "4"], processes=2), wrk_args=list(WRK_THREADS),
             expect=SLEPT_BODY, closes=True, note=CLOSES),
    Scenario("threads/gunicorn-gthread", "gunicorn -w 2 -k gthread --threads 4", SLEEP_THREAD,
             start_gunicorn(["-k", "gthread", "--threads", "4"], workers=2),
             wrk_args=list(WRK_THREADS), expect=SLEPT_BODY),
    # --- Tornado's IOLoop as the loop engine, 1,000 connections
    *tornado_rows("hello", HELLO, HELLO, HELLO, HELLO_BODY),
    *tornado_rows("chunks", CHUNKS, CHUNKS, CHUNKS, CHUNKS_BODY),
    *tornado_rows("timer", TIMER_GREENLET, TIMER_GREENLET, TIMER_WAIT, TIMER_BODY, libev=False),
    # --- 10,000 requests parked in a 20 s sleep on one worker
    Scenario("parked/spindle", "spindle --async 10000 (fibers)", SLEEP_SPINDLE,
             with_counter(start_spindle(SPINDLE_PARKED)), measure=measure_parked, kind="parked"),
    Scenario("parked/uwsgi-greenlet", "uWSGI --async 10000 --greenlet", SLEEP_TIMERFD,
             with_counter(start_uwsgi(UWSGI_PARKED, plugins=UWSGI_GREENLET)),
             measure=measure_parked, kind="parked"),
    Scenario("parked/gunicorn-gevent", "gunicorn -k gevent", SLEEP_GEVENT,
             with_counter(start_gunicorn(GUNICORN_PARKED, stop_signal=signal.SIGQUIT)),
             measure=measure_parked, kind="parked"),
    # --- C100K: parked connections up to the descriptor limit, 100,000 socketless cores
    Scenario("c100k/fds-spindle", "spindle --async 100000 (fibers), up to the fd limit",
             SLEEP_SPINDLE, with_counter(start_spindle(SPINDLE_FDS)),
             measure=measure_fd_limit, kind="parked"),
    Scenario("c100k/cores-spindle", "spindle --async 100010: 100,000 cores in spindle.sleep",
             PARK_CORES, with_counter(start_spindle(SPINDLE_CORES)),
             measure=measure_cores, kind="parked"),
    # --- 10,000 websockets on one worker: RSS per idle websocket; one broadcast to all
    *ws_rows("ws-idle", WS_IDLE, WS_IDLE_GEVENT, WS_IDLE, greenlet=True),
    *ws_rows("ws-bcast", WS_BCAST_SPINDLE, WS_BCAST_GEVENT, WS_BCAST_UWSGI),
    # --- suspend+resume round trips, and why uWSGI's async row is not --ugreen
    Scenario("switch/py_switch", "fibers + PyThreadState swap", None, None,
             measure=switch_bench("py_switch"), kind="switch"),
    Scenario("switch/fiber_switch", "fibers, 1 observer", None, None,
             measure=switch_bench("fiber_switch"), kind="switch"),
    Scenario("check/uwsgi-ugreen", "uWSGI --async 100 --ugreen", SLEEP_UGREEN,
             start_uwsgi(["--async", "100", "--ugreen"], plugins=UWSGI_UGREEN),
             measure=measure_ugreen, kind="probe"),
]


@dataclasses.dataclass
class Target:
    row: str                       # the spindle row
    metric: str                    # a key of its result
    op: str                        # ">=", "<=" or "<"
    bound: Optional[float]         # None: shown for information, no verdict
    baseline: Optional[str] = None # then the figure is row / baseline
    baseline_metric: Optional[str] = None  # the baseline's figure, when not named `metric`


UNITS = {"rps": "req/s", "p99_ms": "p99 ms", "worker_us_per_req": "CPU/req",
         "server_us_per_req": "worker+master CPU/req",
         "kib_per_parked": "KiB per parked request", "ns": "ns per round trip",
         "park_s": "seconds to park them all", "kib_per_ws": "KiB per idle websocket",
         "bcast_ms": "ms until the last client has it", "cpu_ms": "worker CPU ms per broadcast"}


def throughput(row: str, baseline: str, rps: float = 1.3, cpu: float = 0.6) -> list[Target]:
    return [Target(row, "rps", ">=", rps, baseline),
            Target(row, "worker_us_per_req", "<=", cpu, baseline)]


TARGETS: list[Target] = [
    *throughput("hello/spindle", "hello/uwsgi"),
    *throughput("hello/spindle", "hello/uwsgi-http11"),
    *throughput("chunks/spindle", "chunks/uwsgi"),
    *throughput("chunks/spindle", "chunks/uwsgi-http11", cpu=0.5),
    # A 3-chunk generator costs little more than hello world.
    Target("chunks/spindle", "worker_us_per_req", "<=", 1.6, "hello/spindle"),
    # --threads: as fast as uWSGI's threads for less CPU; four threads cost
    # a single-threaded worker little per request.
    *throughput("threads/spindle", "threads/uwsgi", rps=1.0, cpu=0.7),
    *(Target("threads/spindle", m, "", None, "threads/gunicorn-gthread")
      for m in ("rps", "worker_us_per_req")),
    Target("hello/spindle-threads4", "worker_us_per_req", "<=", 1.2, "hello/spindle"),
    Target("sleep/spindle", "rps", ">=", 9800),
    Target("sleep/spindle", "p99_ms", "<=", 115),
    Target("sleep/spindle", "worker_us_per_req", "<", 0.5, "sleep/gunicorn-gevent"),
    *(Target("sleep/spindle", m, "", None, f"sleep/{b}")
      for b in ("uwsgi-greenlet", "uwsgi-gevent") for m in ("rps", "worker_us_per_req")),
    *(Target(f"tornado/{w}/spindle-{e}", "rps", ">=", 2.0, f"tornado/{w}/uwsgi")
      for w in ("hello", "chunks", "timer") for e in ("greenlet", "fibers")),
    # --tornado costs no more than the libev engine under the same load.
    *(Target(f"tornado/{w}/spindle-fibers", "worker_us_per_req", "<=", 1.05,
             f"tornado/{w}/spindle-ev") for w in ("hello", "chunks")),
    # Each of the 1,000 connections waits 100 ms per request, so no server
    # passes 10,000 req/s on the timer rows: the 2x req/s target there can
    # only be met against a uWSGI below 5,000 req/s.  CPU per request shows
    # the difference the timer hides: at most half of uWSGI's.
    *(Target(f"tornado/timer/spindle-{e}", "worker_us_per_req", "<=", 0.5, "tornado/timer/uwsgi")
      for e in ("greenlet", "fibers")),
    # Counted from a plain worker with the same --async (cores are made on demand).
    Target("parked/spindle", "kib_per_parked", "<=", 8),
    Target("c100k/fds-spindle", "kib_per_parked", "<=", 8),
    Target("c100k/cores-spindle", "kib_per_parked", "", None),
    Target("c100k/cores-spindle", "park_s", "", None),
    # Being watched (stats + metrics read once a second) costs at most 3% more
    # CPU per request, the master's included.
    Target("hello/spindle-stats", "server_us_per_req", "<=", 1.03, "hello/spindle"),
    Target("switch/py_switch", "ns", "<=", 150),
    # A websocket waiting in recv holds about what a parked request does
    # (judged when parked/spindle ran too), and less than in either peer.
    Target("ws-idle/spindle", "kib_per_ws", "<=", 1.25, "parked/spindle",
           baseline_metric="kib_per_parked"),
    *(Target("ws-idle/spindle", "kib_per_ws", "<=", 1.0, f"ws-idle/{b}")
      for b in ("gunicorn-gevent", "uwsgi-gevent")),
    Target("ws-idle/spindle", "kib_per_ws", "", None),
    Target("ws-idle/spindle-greenlet", "kib_per_ws", "", None),
    # One broadcast to 10,000: the worker's CPU at most the peers'; the time
    # until the last client has it is shown (a busy machine stretches it).
    *(t for b in ("gunicorn-gevent", "uwsgi-gevent") for t in (
        Target("ws-bcast/spindle", "cpu_ms", "<=", 1.0, f"ws-bcast/{b}"),
        Target("ws-bcast/spindle", "bcast_ms", "", None, f"ws-bcast/{b}"))),
]
