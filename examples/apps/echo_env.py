"""Answers with what the loading options changed, as JSON: SCRIPT_NAME and
PATH_INFO, sys.argv, sys.prefix, whether wsgi.file_wrapper is offered, and
the values of the modules named in ?modules=a,b (their VALUE attribute)."""
import json
import os
import sys
import urllib.parse

LOADED_IN = os.getpid()


def application(environ, start_response):
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    mods = {}
    for name in ",".join(query.get("modules", [])).split(","):
        if name:
            mod = sys.modules.get(name)
            mods[name] = getattr(mod, "VALUE", None) if mod else None
    body = {
        "app": __name__,
        "script_name": environ["SCRIPT_NAME"],
        "path_info": environ["PATH_INFO"],
        "argv": sys.argv,
        "prefix": sys.prefix,
        "file_wrapper": "wsgi.file_wrapper" in environ,
        "modules": mods,
        "loaded_in": LOADED_IN,
        "pid": os.getpid(),
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]
