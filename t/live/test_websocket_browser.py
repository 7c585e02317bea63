"""A real browser's websocket: headless Chromium (Debian's chromium, from
make deps) loads examples/websocket/echo_page.py from spindle; the page's
script echoes 100 messages over ws://.../ws and writes them into the DOM.
The test drives Chromium over the DevTools protocol with python3-websocket
(Page.navigate, Runtime.evaluate polling the result, Page.captureScreenshot)
under every engine pairing, all on one browser."""

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest
import websocket

from harness import example, pairing_args, pairing_names, pid_alive, wait_until

CHROMIUM = shutil.which("chromium")
N = 100


class DevTools:
    """One page target driven over its DevTools websocket."""

    def __init__(self, ws_url):
        # Chromium refuses DevTools websockets that carry an Origin header
        # unless told to allow it; a client without one is let in.
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        me = self.next_id
        self.ws.send(json.dumps({"id": me, "method": method, "params": params}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == me:  # events in between are dropped
                if "error" in msg:
                    raise AssertionError("%s: %s" % (method, msg["error"]))
                return msg["result"]
        raise AssertionError("no answer to %s" % method)

    def evaluate(self, expr, await_promise=False):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True,
                      awaitPromise=await_promise)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def close(self):
        self.ws.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Chromium on a free DevTools port; yields the page target's
    DevTools connection. Stopped by its PID."""
    if not CHROMIUM:
        pytest.skip("chromium is not installed (make deps installs it)")
    d = tmp_path_factory.mktemp("chromium")
    profile = d / "profile"
    log = open(d / "chromium.log", "wb")
    proc = subprocess.Popen([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                             "--remote-debugging-port=0", "--user-data-dir=%s" % profile,
                             "--no-first-run", "--disable-extensions", "about:blank"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True)
    port_file = profile / "DevToolsActivePort"

    def port():
        if proc.poll() is not None:
            raise AssertionError("chromium exited with %s:\n%s"
                                 % (proc.returncode, (d / "chromium.log").read_text()))
        try:
            first = port_file.read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        return int(first) if first.strip().isdigit() else None

    def page_target(p):
        with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % p, timeout=10) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        return pages[0]["webSocketDebuggerUrl"] if pages else None
    dt = None
    try:
        p = wait_until(port, 60, what="chromium's DevToolsActivePort")
        dt = DevTools(wait_until(lambda: page_target(p), 30, what="a page target"))
        dt.call("Page.enable")
        yield dt
    finally:
        if dt:
            dt.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        # Its renderer and zygote children are in the session it leads.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()
        assert not pid_alive(proc.pid)


@pytest.fixture(params=pairing_names() + ["deflate"])
def server(request, spindle):
    """The page's server under each pairing, and once (default pairing) with
    --websocket-deflate, which Chromium's offer of permessage-deflate meets."""
    deflate = request.param == "deflate"
    pairing = pairing_names()[0] if deflate else request.param
    return spindle("--http-socket", "127.0.0.1:0", "--wsgi-file",
                   example("websocket/echo_page.py"), *pairing_args(pairing, 8),
                   *(["--websocket-deflate"] if deflate else []),
                   extra=False, name="wspage-" + request.param)


def test_browser_echoes_100_messages_in_order(browser, server):
    browser.call("Page.navigate", url="%s/?n=%d" % (server.url, N))

    def result():
        # Until the page has loaded (or on a page left from the last run) the
        # element may be missing or stale: only a finished run on our URL counts.
        return browser.evaluate(
            "(() => { const e = document.getElementById('result');"
            " return location.port === '%d' && e && e.dataset.done ? e.textContent : null; })()"
            % server.port)
    text = wait_until(result, 60, interval=0.1, what="the page's 100 echoes")
    ext = browser.evaluate("ws.extensions")
    if "--websocket-deflate" in server.args:
        assert ext.startswith("permessage-deflate"), ext
    else:
        assert ext == "", ext
    got = json.loads(text)
    assert got["count"] == N
    assert got["messages"] == ["message %d \u2603 %s" % (i, "x" * i) for i in range(N)]
    shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 1000
    # The page closed its websocket with 1000: the app's recv raised IOError
    # and the request ended, without an error logged.
    server.wait_for_log(r'ACCESS .*"GET /ws', timeout=15)
    assert "Traceback" not in server.log_text()


def test_browser_offering_two_subprotocols(browser, spindle):
    """uwsgi.websocket_handshake() with no protocol answers one of the two
    the browser offers (a list in the answer would fail the connection)."""
    srv = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file",
                  example("websocket/echo_page.py"), name="wsproto")
    browser.call("Page.navigate", url="%s/?n=1" % srv.url)
    wait_until(lambda: browser.evaluate(
        "location.port === '%d' && document.readyState === 'complete'" % srv.port), 30,
        what="the page loaded")
    got = browser.evaluate(
        "new Promise(done => { const s = new WebSocket('ws://' + location.host + '/ws',"
        " ['chat', 'superchat']);"
        " s.onopen = () => { done('open ' + s.protocol); s.close(); };"
        " s.onerror = () => done('error'); })", await_promise=True)
    assert got == "open chat"


def test_chat_page_in_the_browser(browser, spindle):
    """examples/websocket/chat.py's page in Chromium and a python3-websockets
    client in the same room: each hears the other."""
    import asyncio
    import websockets
    srv = spindle("--ini", example("websocket/chat.ini"), env={"CHAT_ADDR": "127.0.0.1:0"},
                  name="chat")
    browser.call("Page.navigate", url="%s/?name=browser" % srv.url)
    log_js = ("location.port === '%d' ? Array.from(document.querySelectorAll('#log li'))"
              ".map(li => li.textContent) : []" % srv.port)
    wait_until(lambda: "* browser joined (1 here)" in browser.evaluate(log_js), 30,
               what="the page joined the room")

    async def peer():
        async with websockets.connect("ws://%s/ws?name=py" % srv.http_addr, open_timeout=15,
                                      ping_interval=None) as ws:
            assert await ws.recv() == "* py joined (2 here)"
            await ws.send("hello browser")
            assert await ws.recv() == "py: hello browser"
            # The page types and sends through its form.
            browser.evaluate("document.getElementById('text').value = 'hello py \\u2603';"
                             "document.getElementById('form').requestSubmit(); true")
            return await ws.recv()
    assert asyncio.run(asyncio.wait_for(peer(), 30)) == "browser: hello py \u2603"
    lines = wait_until(lambda: (lambda l: l if "* py left" in l else None)(
        browser.evaluate(log_js)), 30, what="the page showing the conversation")
    assert lines[lines.index("* py joined (2 here)"):] == [
        "* py joined (2 here)", "py: hello browser", "browser: hello py \u2603", "* py left"]
    # The page closes its websocket (navigating away left it open here), so
    # the server stops at once instead of waiting for the room to empty.
    browser.evaluate("ws.close(1000); true")
    srv.wait_for_log(r'ACCESS .*"GET /ws\?name=browser', timeout=15)
