"""A websocket echo in uWSGI's API: the request's core loops over
websocket_recv()/websocket_send() until the client closes.

  /        echoes as text          /binary  echoes as binary
  /nb      polls websocket_recv_nb() between short sleeps
  /once    echoes one message, then returns (the server closes with 1000)
  /raise   raises after the first message (the server closes with 1011)
"""
import spindle
import uwsgi


def application(environ, start_response):
    uwsgi.websocket_handshake(environ["HTTP_SEC_WEBSOCKET_KEY"], environ.get("HTTP_ORIGIN", ""))
    path = environ["PATH_INFO"]
    send = uwsgi.websocket_send_binary if path == "/binary" else uwsgi.websocket_send
    while True:
        if path == "/nb":
            msg = uwsgi.websocket_recv_nb()
            if not msg:
                spindle.sleep(0.01)
                continue
        else:
            msg = uwsgi.websocket_recv()
        if path == "/raise":
            raise RuntimeError("websocket app failed on purpose")
        send(msg)
        if path == "/once":
            return []
