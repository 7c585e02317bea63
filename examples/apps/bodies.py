"""Response bodies, by path: /bytes returns a bare bytes object (uWSGI sends
it whole; so does spindle), /str a bare str and /str-chunk a list holding a
str (both errors: 500, and the log says why)."""


def application(environ, start_response):
    path = environ["PATH_INFO"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/bytes":
        return b"a bare bytes body, sent whole"
    if path == "/str":
        return "a bare str"
    if path == "/str-chunk":
        return [b"fine, ", "then a str"]
    return [b"bodies: /bytes /str /str-chunk"]
