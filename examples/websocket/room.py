"""A chat room on spindle.websocket(): every message a client sends goes to
every client connected to this worker thread. One request sends on the other
requests' websockets; a client that reads too slowly is dropped by the
server (--websocket-send-buffer) and leaves the room.

  /chat      the room: "flood N SIZE" broadcasts N messages of SIZE bytes
  /echo      echoes each message with its type (str stays text, bytes binary)
  /timeout   recv(timeout=0.3): answers "timeout" when nothing came
  /proto     speaks "chat" or "superchat"; sends back the one chosen
  /close     closes with 4000 "bye" after the first message
  /report    logs how the client closed and whether send() then raised
  /later     a loop callback (spindle.call_later) sends, then echoes
  /cross     sends "hi" to the /cross websockets opened before; one served by
             another thread (--threads) refuses: "refused: ..." comes back
"""
import spindle

room = set()
cross = set()


def broadcast(msg):
    for peer in list(room):
        try:
            peer.send(msg)
        except spindle.WebSocketClosed as e:
            room.discard(peer)
            spindle.log("chat: dropped a peer: %s" % e)


def chat(ws):
    room.add(ws)
    try:
        ws.send("joined %d" % len(room))
        for msg in ws:
            if isinstance(msg, str) and msg.startswith("flood "):
                _, n, size = msg.split()
                for i in range(int(n)):
                    broadcast(bytes([i % 256]) * int(size))
                    spindle.sleep(0.002)  # room for the readers to keep up
                ws.send("flooded")
            else:
                broadcast(msg)
    finally:
        room.discard(ws)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/proto":
        ws = spindle.websocket(environ, protocols=["chat", "superchat"])
        ws.send(ws.subprotocol or "none")
        ws.recv()
        return []
    with spindle.websocket(environ) as ws:
        if path == "/chat":
            chat(ws)
        elif path == "/echo":
            for msg in ws:
                ws.send(msg)
        elif path == "/timeout":
            try:
                ws.recv(timeout=0.3)
                ws.send("message")
            except TimeoutError:
                ws.send("timeout")
            ws.recv()
        elif path == "/close":
            ws.recv()
            ws.close(4000, "bye")
            assert ws.recv() is None and ws.closed
        elif path == "/cross":
            for peer in list(cross):
                try:
                    peer.send("hi")
                except RuntimeError as e:
                    ws.send("refused: %s" % e)
            cross.add(ws)
            ws.send("done")
            ws.recv()
            cross.discard(ws)
        elif path == "/later":
            spindle.call_later(0.05, ws.send, "from the loop")
            for msg in ws:
                ws.send(msg)
        elif path == "/report":
            for msg in ws:
                pass
            try:
                ws.send("late")
                raised = "no"
            except spindle.WebSocketClosed:
                raised = "yes"
            spindle.log("report: close_code=%s closed=%s send_raised=%s"
                        % (ws.close_code, ws.closed, raised))
    return []
