# uWSGI's Tornado docs (Tornado.rst), "WSGI generators (aka yield all over
# the place)", as written. Run it as the docs do:
#     spindle --http-socket :9090 --wsgi-file uwsgi_doc_generator.py --tornado 100 --greenlet
# Changed: the chunks are bytes. The docs were written for Python 2, where
# "one" is bytes; on Python 3 a WSGI body is bytes (PEP 3333), and a str
# chunk is an error (uWSGI logs and drops it, spindle answers 500).
def application(e, sr):
    sr('200 OK', [('Content-Type','text/html')])
    yield b"one"    # the docs: yield "one"
    yield b"two"    # the docs: yield "two"
    yield b"three"  # the docs: yield "three"
