"""The layout `django-admin startproject` makes: DIR/proj/wsgi.py importing
proj.settings, served with --chdir DIR --wsgi-file proj/wsgi.py."""
from proj import settings


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [settings.GREETING.encode()]
