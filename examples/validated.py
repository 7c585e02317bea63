"""Small WSGI apps, each wrapped in wsgiref.validate.validator, chosen by the
first path segment. The validator asserts that the *server* keeps PEP 3333
(environ types, start_response use, wsgi.input/wsgi.errors methods, close()
called); its warnings are turned into errors so nothing slips by as a
warning. A violation raises inside the app, which the server turns into a 500.

    spindle --http-socket 127.0.0.1:9090 --wsgi-file examples/validated.py
    curl 127.0.0.1:9090/env
"""

import json
import sys
import warnings
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)

TEXT = [("Content-Type", "text/plain")]


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _read_all(inp, chunk=7):
    """Read wsgi.input with read(n) only: the validator insists on an
    argument. An odd chunk size exercises partial reads."""
    out = []
    for _ in range(1 << 22):
        b = inp.read(chunk)
        if not b:
            break
        out.append(b)
    return b"".join(out)


def env_app(environ, start_response):
    """The environ as JSON: each key maps to [type name, value or None]."""
    out = {}
    for k, v in environ.items():
        simple = isinstance(v, (str, int, float, bool, tuple)) or v is None
        out[k] = [type(v).__name__, list(v) if isinstance(v, tuple) else (v if simple else None)]
    inp = environ["wsgi.input"]
    out["_input_methods"] = [m for m in ("read", "readline", "readlines", "__iter__")
                             if hasattr(inp, m)]
    err = environ["wsgi.errors"]
    out["_errors_methods"] = [m for m in ("write", "writelines", "flush") if hasattr(err, m)]
    return _json(start_response, out)


def echo_app(environ, start_response):
    body = _read_all(environ["wsgi.input"])
    start_response("200 OK", TEXT + [("Content-Length", str(len(body))),
                                     ("X-Content-Length", environ.get("CONTENT_LENGTH", "-")),
                                     ("X-Content-Type", environ.get("CONTENT_TYPE", "-"))])
    return [body]


def readline_app(environ, start_response):
    inp = environ["wsgi.input"]
    lines = []
    for _ in range(100000):
        line = inp.readline()
        if not line:
            break
        lines.append(line.decode("latin-1"))
    # readline with a size limit returns at most that many bytes
    return _json(start_response, {"lines": lines})


def readline_sized_app(environ, start_response):
    inp = environ["wsgi.input"]
    parts = []
    for _ in range(100000):
        part = inp.readline(4)
        if not part:
            break
        parts.append(part.decode("latin-1"))
    return _json(start_response, {"parts": parts})


def readlines_app(environ, start_response):
    lines = environ["wsgi.input"].readlines()
    return _json(start_response, {"lines": [l.decode("latin-1") for l in lines]})


def iter_input_app(environ, start_response):
    lines = [l.decode("latin-1") for l in environ["wsgi.input"]]
    return _json(start_response, {"lines": lines})


def gen_app(environ, start_response):
    """A generator body without Content-Length: chunked on HTTP/1.1."""
    n = int(environ.get("QUERY_STRING") or 5)
    start_response("200 OK", TEXT)

    def body():
        for i in range(n):
            yield b"chunk %d\n" % i
    return body()


def list_app(environ, start_response):
    """A list body without Content-Length: the server computes one."""
    start_response("200 OK", TEXT)
    return [b"one ", b"two ", b"", b"three\n"]


def tuple_app(environ, start_response):
    start_response("200 OK", TEXT)
    return (b"tu", b"ple\n")


def cl_app(environ, start_response):
    """Content-Length given by the app: passed through unchanged."""
    body = b"fixed length body\n"
    start_response("200 OK", TEXT + [("Content-Length", str(len(body))), ("X-App", "cl")])
    return [body]


def write_app(environ, start_response):
    write = start_response("200 OK", TEXT)
    write(b"written-1 ")
    write(b"written-2 ")
    return [b"returned\n"]


def exc_info_app(environ, start_response):
    """Start a 200, fail before any body, replace it with a 500 via exc_info."""
    start_response("200 OK", TEXT + [("X-First", "yes")])
    try:
        raise ValueError("planned failure")
    except ValueError:
        start_response("503 Replaced", TEXT + [("X-Second", "yes")], sys.exc_info())
    return [b"replaced body\n"]


def errors_app(environ, start_response):
    err = environ["wsgi.errors"]
    marker = environ.get("QUERY_STRING") or "marker"
    err.write("wsgi.errors says %s\n" % marker)
    err.writelines(["second line %s\n" % marker])
    err.flush()
    start_response("200 OK", TEXT)
    return [b"logged\n"]


def status_app(environ, start_response):
    start_response("299 Custom Reason", TEXT + [("X-Multi", "a"), ("X-Multi", "b")])
    return [b"custom\n"]


def empty_app(environ, start_response):
    start_response("200 OK", TEXT)
    return []


def nocontent_app(environ, start_response):
    start_response("204 No Content", [])
    return []


class _Body:
    """An iterable that is neither a list nor a generator, with close()."""

    def __init__(self, parts):
        self.parts = parts

    def __iter__(self):
        return iter(self.parts)

    def close(self):
        pass


def iterable_app(environ, start_response):
    start_response("200 OK", TEXT)
    return _Body([b"custom ", b"iterable\n"])


APPS = {
    "env": env_app, "echo": echo_app, "readline": readline_app,
    "readline_sized": readline_sized_app, "readlines": readlines_app,
    "iter_input": iter_input_app, "gen": gen_app, "list": list_app, "tuple": tuple_app,
    "cl": cl_app, "write": write_app, "exc_info": exc_info_app, "errors": errors_app,
    "status": status_app, "empty": empty_app, "nocontent": nocontent_app,
    "iterable": iterable_app,
}
VALIDATED = {name: validator(app) for name, app in APPS.items()}


def application(environ, start_response):
    name = environ.get("PATH_INFO", "/").lstrip("/").split("/", 1)[0]
    app = VALIDATED.get(name)
    if app is None:
        start_response("404 Not Found", TEXT)
        return [b"no such app\n"]
    return app(environ, start_response)
