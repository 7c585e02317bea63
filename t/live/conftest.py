"""pytest fixtures for the live tests: real spindle processes in temp dirs.

    def test_x(spindle):
        srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("hello.py"))
        requests.get(srv.url)

`spindle(*args, processes=None, env=None, extra=True, start=True)` starts the
binary (SPINDLE_BIN, default <repo>/spindle) with SPINDLE_EXTRA_ARGS appended,
waits for the bound address and every worker's ready line, and stops it by
PID when the test ends. A failing test gets the server logs attached; a log
with a sanitizer report or a segfault fails the test.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Server, sanitizer_reports, spindle_bin  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes several seconds")


def pytest_collection_modifyitems(config, items):
    if not os.access(spindle_bin(), os.X_OK):
        skip = pytest.mark.skip(reason="no spindle binary at %s (run `make spindle`)" % spindle_bin())
        for item in items:
            item.add_marker(skip)


def pytest_sessionfinish(session, exitstatus):
    # Reports of processes no test could tie to its server (a binary run to
    # completion, a worker that died before it was ready) fail the run here.
    reports = sanitizer_reports()
    if reports:
        for path, text in sorted(reports.items()):
            sys.stderr.write("\n===== sanitizer report %s =====\n%s" % (path, text))
        session.exitstatus = 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    # Module-scoped servers still running served this test: attach their
    # logs (function-scoped ones are printed whole by their fixture).
    if rep.failed and rep.when in ("setup", "call"):
        for srv in list(Server._live):
            if not getattr(srv, "shared", False):
                continue
            lines = srv.log_lines()
            if len(lines) > 300:
                lines = ["... (%d earlier lines in %s)" % (len(lines) - 300, srv.log_path)] + lines[-300:]
            rep.sections.append(("%s log (pid %s, %s)" % (srv.name, srv.pid, " ".join(srv.args)),
                                 "\n".join(lines)))


def _check_crash(srv):
    bad = srv.crash_lines()
    if bad and not srv.allow_crash_lines:
        pytest.fail("server log has crash/sanitizer lines:\n%s\n--- full log:\n%s"
                    % ("\n".join(bad), srv.log_text()), pytrace=False)


class Factory:
    def __init__(self, workdir, shared=False):
        self.workdir = workdir
        self.shared = shared
        self.servers = []

    def __call__(self, *args, processes=None, env=None, extra=True, start=True, name=None,
                 timeout=20.0, expect_bound=True):
        name = name or ("spindle%d" % len(self.servers) if self.servers else "spindle")
        srv = Server(args, os.path.join(str(self.workdir), name), processes=processes, env=env,
                     extra=extra, name=name, expect_bound=expect_bound)
        srv.shared = self.shared
        self.servers.append(srv)
        if start:
            srv.start(timeout)
        return srv

    def teardown(self, failed):
        for srv in self.servers:
            srv.stop()
        if failed:
            for srv in self.servers:
                print("\n===== %s log (%s) =====\n%s" % (srv.name, srv.log_path, srv.log_text()))
        for srv in self.servers:
            _check_crash(srv)


@pytest.fixture
def spindle(request, tmp_path):
    f = Factory(tmp_path)
    yield f
    rep = getattr(request.node, "rep_call", None)
    f.teardown(failed=rep is not None and rep.failed)


@pytest.fixture(scope="module")
def module_spindle(request, tmp_path_factory):
    """Like `spindle`, shared by the tests of one module (for servers the tests
    only read from)."""
    f = Factory(tmp_path_factory.mktemp(request.module.__name__), shared=True)
    yield f
    f.teardown(failed=False)
