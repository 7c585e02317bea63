# uWSGI's Tornado docs (Tornado.rst), "Binding and listening with Tornado",
# as written. Run it as the docs do:
#     spindle --http-socket :9090 --wsgi-file uwsgi_doc_postfork.py --tornado 100 --greenlet
# Worker N's Tornado app listens on port 8000 + N.
# Changed, both marked below: the docs call listen() on `application` (the
# WSGI callable, which has no listen()) instead of `t_application`, and
# leave the WSGI callable's body out (`...`).
from uwsgidecorators import *
import tornado.web

# this is our Tornado-managed app
class MainHandler(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world")

t_application = tornado.web.Application([
    (r"/", MainHandler),
])

# here happens the magic, we bind after every fork()
@postfork
def start_the_tornado_servers():
    t_application.listen(8000 + uwsgi.worker_id())  # the docs: application.listen(...)

# this is our WSGI callable managed by uWSGI
def application(e, sr):
    # the docs: ... (a body of our own)
    sr('200 OK', [('Content-Type', 'text/plain')])
    return [b"Hello from WSGI, worker %d\n" % uwsgi.worker_id()]
