# uWSGI's Tornado docs (Tornado.rst), "Welcome to Callback-Hell", as
# written. Run it as the docs do:
#     spindle --http-socket :9090 --wsgi-file uwsgi_doc_chained.py --tornado 100 --greenlet
# Changed: the fetch line (Tornado 6 removed fetch(url, callback)), marked
# below; `import time`, which the docs' code uses but never imports; and the
# docs' one extra space before `def application`, which Python refuses.
from tornado.httpclient import AsyncHTTPClient
import greenlet
import functools
import time  # missing from the docs

# this gives us access to the main IOLoop (the same used by uWSGI)
from tornado.ioloop import IOLoop
io_loop = IOLoop.instance()

def sleeper(me):
    #TIMED OUT
    # finally come back to WSGI callable
    me.switch()

# this is called at the end of the external HTTP request
def handle_request(me, response):
    if response.error:
        print("Error:", response.error)
    else:
        me.result = response.body
    # add another callback in the chain
    me.timeout = io_loop.add_timeout(time.time() + 10, functools.partial(sleeper, me))

def application(e, sr):
    me = greenlet.getcurrent()
    http_client = AsyncHTTPClient()
    # Tornado 6: was http_client.fetch("http://localhost:9191/services", functools.partial(handle_request, me))
    http_client.fetch("http://localhost:9191/services", raise_error=False).add_done_callback(lambda f: handle_request(me, f.result()))
    # suspend the execution until an IOLoop event is available
    me.parent.switch()
    # unregister the timer
    io_loop.remove_timeout(me.timeout)
    sr('200 OK', [('Content-Type','text/plain')])
    return me.result
