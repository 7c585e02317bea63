# uWSGI's Tornado docs (Tornado.rst), "Integrating WSGI with the tornado
# api", as written. Run it as the docs do:
#     spindle --http-socket :9090 --wsgi-file uwsgi_doc_fetch.py --tornado 100 --greenlet
# Changed: the fetch line (Tornado 6 removed fetch(url, callback)), marked
# below; the docs' code block indents `def application` by one extra space,
# which Python refuses.
from tornado.httpclient import AsyncHTTPClient
import greenlet
import functools

# this gives us access to the main IOLoop (the same used by uWSGI)
from tornado.ioloop import IOLoop
io_loop = IOLoop.instance()

# this is called at the end of the external HTTP request
def handle_request(me, response):
    if response.error:
        print("Error:", response.error)
    else:
        me.result = response.body
    # back to the WSGI callable
    me.switch()

def application(e, sr):
    me = greenlet.getcurrent()
    http_client = AsyncHTTPClient()
    # Tornado 6: was http_client.fetch("http://localhost:9191/services", functools.partial(handle_request, me))
    http_client.fetch("http://localhost:9191/services", raise_error=False).add_done_callback(lambda f: handle_request(me, f.result()))
    # suspend the execution until an IOLoop event is available
    me.parent.switch()
    sr('200 OK', [('Content-Type','text/plain')])
    return me.result
