"""examples/websocket/chat.py started from examples/websocket/chat.ini:
three clients in the room, each message reaches all three in the same order,
joins and departures (a clean close, a client that vanishes) are announced,
and the page is served."""

import asyncio

import pytest
import requests
import websockets

from harness import example, pairing_args, pairing_names

NAMES = ["alice", "bob", "carol"]


@pytest.mark.parametrize("pairing", pairing_names())
def test_chat_room_with_three_clients(spindle, pairing):
    srv = spindle("--ini", example("websocket/chat.ini"), *pairing_args(pairing, 10),
                  env={"CHAT_ADDR": "127.0.0.1:0"}, extra=False)
    page = requests.get(srv.url + "/", timeout=10)
    assert page.status_code == 200 and "new WebSocket(" in page.text

    async def go():
        socks = []
        for i, name in enumerate(NAMES):
            ws = await websockets.connect("ws://%s/ws?name=%s" % (srv.http_addr, name),
                                          open_timeout=15, ping_interval=None)
            socks.append(ws)
            # Everyone in the room so far hears of the newcomer.
            for other in socks:
                assert await other.recv() == "* %s joined (%d here)" % (name, i + 1)
        for ws, name in zip(socks, NAMES):
            await ws.send("hello from %s \u2603" % name)
        heard = [[await ws.recv() for _ in NAMES] for ws in socks]
        await socks[0].close()
        left = [await ws.recv() for ws in socks[1:]]
        socks[2].transport.abort()  # carol vanishes without a close frame
        left.append(await socks[1].recv())
        await socks[1].send("still here")
        left.append(await socks[1].recv())
        await socks[1].close()
        return heard, left
    heard, left = asyncio.run(asyncio.wait_for(go(), 30))
    said = sorted("%s: hello from %s \u2603" % (n, n) for n in NAMES)
    for got in heard:
        assert sorted(got) == said
        assert got == heard[0]  # one room, one order
    assert left == ["* alice left"] * 2 + ["* carol left", "bob: still here"]
    # Clients that leave end their requests quietly.
    srv.wait_for_log(r'ACCESS .*"GET /ws\?name=carol', timeout=15)
    assert "Traceback" not in srv.log_text()
