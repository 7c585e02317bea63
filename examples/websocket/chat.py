"""A chat room as a plain WSGI app: every message one client sends goes to
every client connected to the same worker (the room lives in the worker's
memory: run one worker, or see README.md for several).

  GET /             the page: the room, an input, a script that joins /ws
  GET /ws?name=N    the websocket: joins as N; each message sent is
                    broadcast as "N: text"; joins and departures as "* N ..."

  ./spindle --ini examples/websocket/chat.ini       # then open http://127.0.0.1:9090/

Each client's request keeps its async core while it is in the room, waiting
in its websocket's iteration; whoever speaks sends straight onto everyone's
websocket (spindle.websocket objects may be sent on from any request of the
same serving thread, so with --threads there is one room per thread).
"""
import html
import threading
from collections import defaultdict
from urllib.parse import parse_qs

import spindle

ROOMS = defaultdict(set)  # serving thread -> the websockets in its room


def broadcast(room, text):
    for peer in list(room):
        try:
            peer.send(text)
        except spindle.WebSocketClosed:  # gone, or too slow to read: dropped
            room.discard(peer)


def chat(environ):
    name = parse_qs(environ.get("QUERY_STRING", "")).get("name", ["guest"])[0][:32] or "guest"
    room = ROOMS[threading.get_ident()]
    with spindle.websocket(environ) as ws:
        room.add(ws)
        broadcast(room, "* %s joined (%d here)" % (name, len(room)))
        try:
            for msg in ws:  # until the client closes
                if isinstance(msg, bytes):
                    msg = msg.decode("utf-8", "replace")
                broadcast(room, "%s: %s" % (name, msg))
        finally:
            room.discard(ws)
            broadcast(room, "* %s left" % name)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/ws":
        chat(environ)
        return []
    if path != "/":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    here = len(ROOMS[threading.get_ident()])
    page = PAGE.replace("{{here}}", html.escape(str(here))).encode()
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(page)))])
    return [page]


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>chat</title>
<style>
body { font-family: sans-serif; max-width: 40em; margin: 2em auto; }
#log { list-style: none; padding: 0; border: 1px solid #ccc; height: 20em; overflow-y: auto; }
#log li.notice { color: #777; }
</style></head>
<body>
<h1>chat</h1>
<p>{{here}} here when this page was served.</p>
<ul id="log"></ul>
<form id="form">
  <input id="name" placeholder="your name" size="10">
  <input id="text" placeholder="say something" size="40" autocomplete="off">
  <button>send</button>
</form>
<script>
const log = document.getElementById("log");
const nameBox = document.getElementById("name");
const textBox = document.getElementById("text");
nameBox.value = new URLSearchParams(location.search).get("name") ||
                "guest" + Math.floor(Math.random() * 1000);
let ws = null;

function show(text) {
  const li = document.createElement("li");
  li.textContent = text;
  if (text.startsWith("* ")) li.className = "notice";
  log.appendChild(li);
  log.scrollTop = log.scrollHeight;
}

function join() {
  ws = new WebSocket("ws://" + location.host + "/ws?name=" + encodeURIComponent(nameBox.value));
  ws.onmessage = (e) => show(e.data);
  ws.onclose = (e) => show("* disconnected (" + e.code + ")");
}

document.getElementById("form").onsubmit = (e) => {
  e.preventDefault();
  if (!ws || ws.readyState > WebSocket.OPEN) join();
  const text = textBox.value;
  if (!text) return;
  const go = () => ws.send(text);
  if (ws.readyState === WebSocket.OPEN) go(); else ws.addEventListener("open", go);
  textBox.value = "";
};
join();
</script>
</body></html>
"""
