"""A Paste Deploy app factory (see paste.ini).

    spindle --http-socket 127.0.0.1:9090 --paste config:$PWD/examples/paste.ini
"""


def make_app(global_conf, greeting="hello", **local_conf):
    extra = sorted(local_conf.items())

    def application(environ, start_response):
        lines = ["%s from paste" % greeting] + ["%s=%s" % kv for kv in extra]
        lines.append("path=%s" % environ.get("PATH_INFO", ""))
        body = ("\n".join(lines) + "\n").encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    return application
