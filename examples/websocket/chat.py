"""A chat room as a plain WSGI app: every message one client sends goes to
every client connected to the same worker (the room lives in the worker's
memory: run one worker, or see README.md for several).

  GET /             the page: the room, an input, a script that joins /ws
  GET /ws?name=N    the websocket: joins as N; each text message sent is
                    broadcast as "N: text"; joins and departures as "* N ..."

  ./spindle --ini examples/websocket/chat.ini       # then open http://127.0.0.1:9090/

Each client's request keeps its async core while it is in the room. The
room is a set of members, each with an outbox: a member's core moves what
arrives from its client into every outbox, and sends its own outbox to its
client (uWSGI's websocket API sends only on the request's own connection).
"""
import html
from urllib.parse import parse_qs

import spindle
import uwsgi

POLL = 0.02  # seconds a member's core rests when there was nothing to do


class Member:
    def __init__(self, name):
        self.name = name
        self.outbox = []


ROOM = set()


def broadcast(text):
    for m in ROOM:
        m.outbox.append(text)


def chat(environ):
    name = parse_qs(environ.get("QUERY_STRING", "")).get("name", ["guest"])[0][:32] or "guest"
    uwsgi.websocket_handshake()
    me = Member(name)
    ROOM.add(me)
    broadcast("* %s joined (%d here)" % (name, len(ROOM)))
    try:
        while True:
            msg = uwsgi.websocket_recv_nb()  # IOError once the client is gone
            if msg:
                broadcast("%s: %s" % (name, msg.decode()))
            while me.outbox:
                uwsgi.websocket_send(me.outbox.pop(0))
            if not msg:
                spindle.sleep(POLL)
    finally:
        ROOM.discard(me)
        broadcast("* %s left" % name)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/ws":
        chat(environ)
        return []
    if path != "/":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    page = PAGE.replace("{{here}}", html.escape(str(len(ROOM)))).encode()
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
