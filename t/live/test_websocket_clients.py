"""Real websocket clients from Debian against examples/websocket/echo.py,
under every engine pairing: python3-websockets (asyncio) and
python3-websocket (websocket-client). Echo of text and binary, messages of a
megabyte, fragmented sends, client pings, the close codes a client sees, and
many clients at once (each websocket holds one async core)."""

import asyncio
import os

import pytest
import websocket
import websockets
from websocket import ABNF

from harness import example, pairing_args, pairing_names

APP = example("websocket/echo.py")
CORES = 64
CLIENTS = 48
MAX_KB = 2048
BIG = 1 << 20


@pytest.fixture(scope="module", params=pairing_names())
def server(request, module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", APP,
                          "--websocket-max-size", str(MAX_KB),
                          *pairing_args(request.param, CORES), extra=False,
                          name="wsclients-" + request.param)


def uri(srv, path="/"):
    return "ws://%s%s" % (srv.http_addr, path)


def run(coro, timeout=30):
    """Runs one client coroutine to completion, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def connect(srv, path="/", compression=None):
    # No client-side keepalive pings: each test says what it sends.
    return websockets.connect(uri(srv, path), compression=compression, ping_interval=None,
                              max_size=4 * BIG, open_timeout=15, close_timeout=15)


# -- python3-websockets ------------------------------------------------------

@pytest.mark.parametrize("compression", [None, "deflate"])
def test_websockets_echo_text_and_binary(server, compression):
    """With and without the client's permessage-deflate offer (the server
    answers it or not; the echo is the same)."""
    async def go():
        async with connect(server, compression=compression) as ws:
            for msg in ("hello", "h\u00e9llo \u2603 \U0001F600", ""):
                await ws.send(msg)
                assert await ws.recv() == msg  # a str: the server sent text
        async with connect(server, "/binary", compression=compression) as ws:
            blob = os.urandom(70000)
            await ws.send(blob)
            assert await ws.recv() == blob
    run(go())


def test_websockets_large_messages(server):
    async def go():
        async with connect(server, "/binary") as ws:
            for n in (BIG, BIG + 12345):
                blob = os.urandom(n)
                await ws.send(blob)
                assert await ws.recv() == blob
        async with connect(server) as ws:
            text = "\u00e9t\u00e9 " * (BIG // 6)
            await ws.send(text)
            assert await ws.recv() == text
    run(go())


def test_websockets_fragmented_sends(server):
    """An iterable is sent as one fragmented message; so is an async one."""
    async def go():
        async with connect(server) as ws:
            parts = ["frag", "men", "ted \u2603", "", " end"]
            await ws.send(parts)
            assert await ws.recv() == "".join(parts)

            async def pieces():
                for i in range(50):
                    yield b"%03d," % i
            await ws.send(pieces())  # binary fragments, echoed on / as text
            assert await ws.recv() == "".join("%03d," % i for i in range(50))
    run(go())


def test_websockets_client_ping(server):
    async def go():
        async with connect(server) as ws:
            for payload in (b"", b"ping payload", os.urandom(125)):
                waiter = await ws.ping(payload)
                await asyncio.wait_for(waiter, 15)  # done once the matching pong came
            await ws.send("after pings")
            assert await ws.recv() == "after pings"
    run(go())


@pytest.mark.parametrize("path,send,code", [
    ("/once", "only one", 1000),     # the app returned
    ("/raise", "boom", 1011),        # the app raised
    ("/", "x" * (MAX_KB * 1024 + 1), 1009),  # over --websocket-max-size
], ids=["app-returns-1000", "app-raises-1011", "too-big-1009"])
def test_websockets_close_codes_from_the_server(server, path, send, code):
    async def go():
        async with connect(server, path) as ws:
            try:
                await ws.send(send)
            except websockets.exceptions.ConnectionClosed:
                # The server may refuse an oversized message (1009) before
                # the client has finished sending it.
                assert code == 1009
                return ws.close_code
            if path == "/once":
                assert await ws.recv() == send
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await ws.recv()
            return ws.close_code
    assert run(go()) == code


def test_websockets_client_close_code_echoed(server):
    async def go():
        ws = await connect(server)
        await ws.send("hi")
        assert await ws.recv() == "hi"
        await ws.close(4321, "leaving")
        return ws.close_code, ws.close_reason
    code, _ = run(go())
    assert code == 4321


def test_websockets_many_concurrent_clients(server):
    """CLIENTS websockets open at once, interleaving their echoes: each
    holds a core while the others are served."""
    async def client(i, opened, go_on):
        async with connect(server) as ws:
            opened.append(i)
            await go_on.wait()
            for k in range(20):
                msg = "client %d message %d" % (i, k)
                await ws.send(msg)
                assert await ws.recv() == msg
        return i

    async def go():
        opened, go_on = [], asyncio.Event()
        tasks = [asyncio.create_task(client(i, opened, go_on)) for i in range(CLIENTS)]
        while len(opened) < CLIENTS:  # all connected before any echo
            done = [t for t in tasks if t.done()]
            for t in done:
                t.result()  # raises what a failed client raised
            await asyncio.sleep(0.02)
        go_on.set()
        return sorted(await asyncio.gather(*tasks))
    assert run(go(), timeout=60) == list(range(CLIENTS))


# -- python3-websocket (websocket-client) -------------------------------------

def wc_connect(srv, path="/"):
    return websocket.create_connection(uri(srv, path), timeout=15)


def test_websocket_client_large_and_fragmented(server):
    ws = wc_connect(server, "/binary")
    try:
        blob = os.urandom(BIG)
        ws.send_binary(blob)
        assert ws.recv() == blob
        # websocket-client's own fragmenting writer
        ws.send_frame(ABNF.create_frame(blob[:1000], ABNF.OPCODE_BINARY, fin=0))
        for k in range(1000, 5000, 1000):
            ws.send_frame(ABNF.create_frame(blob[k:k + 1000], ABNF.OPCODE_CONT, fin=0))
        ws.send_frame(ABNF.create_frame(b"", ABNF.OPCODE_CONT, fin=1))
        assert ws.recv() == blob[:5000]
    finally:
        ws.close()


def test_websocket_client_close_status(server):
    ws = wc_connect(server, "/raise")
    ws.send("boom")
    op, frame = ws.recv_data_frame(control_frame=True)
    assert op == ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame.data[:2], "big") == 1011
    ws.shutdown()
