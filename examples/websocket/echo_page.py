"""A page that talks to its own server over a websocket, in uWSGI's API.

  GET /          an HTML page whose script opens ws://HOST/ws, sends N
                 messages (?n=N, default 100; message i is "message i \u2603 "
                 and i x's), and writes what came back
                 into <pre id="result"> as JSON: {"count", "messages"}
  /ws            the websocket: echoes every message as text

Run it: spindle --http-socket :9090 --wsgi-file examples/websocket/echo_page.py --async 10 --fibers
and open http://localhost:9090/ in a browser (t/live/test_websocket_browser.py
drives it with headless Chromium).
"""
import uwsgi

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>websocket echo</title></head>
<body>
<h1>websocket echo</h1>
<pre id="result">running</pre>
<script>
const n = Number(new URLSearchParams(location.search).get("n") || 100);
const out = document.getElementById("result");
const got = [];
const ws = new WebSocket("ws://" + location.host + "/ws");
ws.onopen = () => {
  for (let i = 0; i < n; i++) ws.send("message " + i + " \\u2603 " + "x".repeat(i));
};
ws.onmessage = (e) => {
  got.push(e.data);
  if (got.length === n) {
    out.textContent = JSON.stringify({count: got.length, messages: got});
    out.dataset.done = "1";
    ws.close(1000, "done");
  }
};
ws.onerror = () => { out.textContent = "websocket error"; };
ws.onclose = (e) => {
  if (got.length < n) out.textContent = "closed after " + got.length + " with " + e.code;
};
</script>
</body></html>
""".encode()


def application(environ, start_response):
    if environ["PATH_INFO"] == "/ws":
        uwsgi.websocket_handshake()
        while True:  # ends with IOError when the page closes the websocket
            uwsgi.websocket_send(uwsgi.websocket_recv())
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(PAGE)))])
    return [PAGE]
