"""Real frameworks and the app loaders: Flask, Django, Paste Deploy,
--wsgi-file with --callable, --module / -w with --pythonpath."""

import pytest
import requests

from harness import EXAMPLES, RawConn, build_request, example


# -- Flask ------------------------------------------------------------------

@pytest.fixture(scope="module")
def flask_srv(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("flask_app.py"),
                          "--callable", "app", name="flask")


def test_flask_index(flask_srv):
    r = requests.get(flask_srv.url + "/", timeout=10)
    assert r.status_code == 200 and r.text == "Hello from Flask\n"


def test_flask_route_with_args(flask_srv):
    r = requests.get(flask_srv.url + "/hello/world", params={"x": "1", "y": "two"}, timeout=10)
    assert r.status_code == 200
    assert r.json() == {"greeting": "hello world", "args": {"x": "1", "y": "two"}}


def test_flask_form_post(flask_srv):
    r = requests.post(flask_srv.url + "/form", data={"name": "Ada", "lang": "en"}, timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["form"] == {"name": "Ada", "lang": "en"}
    assert body["content_type"].startswith("application/x-www-form-urlencoded")


def test_flask_json_post(flask_srv):
    r = requests.post(flask_srv.url + "/json", json={"numbers": [1, 2, 3, 4]}, timeout=10)
    assert r.status_code == 200
    assert r.json() == {"received": {"numbers": [1, 2, 3, 4]}, "total": 10}


def test_flask_streaming(flask_srv):
    r = requests.get(flask_srv.url + "/stream", timeout=10)
    assert r.status_code == 200
    assert r.text == "".join("line %d\n" % i for i in range(4))


def test_flask_404_and_500(flask_srv):
    assert requests.get(flask_srv.url + "/nope", timeout=10).status_code == 404
    r = requests.get(flask_srv.url + "/fail", timeout=10)
    assert r.status_code == 500
    flask_srv.wait_for_log(r"flask view failed")


# -- Django -----------------------------------------------------------------

@pytest.fixture(scope="module")
def django_srv(module_spindle):
    return module_spindle("--http-socket", "127.0.0.1:0", "--pythonpath", EXAMPLES,
                          "--module", "django_site.wsgi:application", name="django")


def test_django_index(django_srv):
    r = requests.get(django_srv.url + "/", timeout=10)
    assert r.status_code == 200 and r.text == "Hello from Django\n"


def test_django_url_params(django_srv):
    r = requests.get(django_srv.url + "/items/42/", params={"q": "find me"}, timeout=10)
    assert r.status_code == 200
    assert r.json() == {"item": 42, "q": "find me", "method": "GET", "path": "/items/42/"}


def test_django_append_slash_redirect(django_srv):
    r = requests.get(django_srv.url + "/items/42", allow_redirects=False, timeout=10)
    assert r.status_code == 301
    assert r.headers["Location"].endswith("/items/42/")


def test_django_form_post(django_srv):
    r = requests.post(django_srv.url + "/form/", data={"a": "1", "b": "x y"}, timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["form"] == {"a": "1", "b": "x y"}
    assert body["host"] == "127.0.0.1:%d" % django_srv.port


def test_django_json_post(django_srv):
    r = requests.post(django_srv.url + "/json/", json={"k": [1, "two"]}, timeout=10)
    assert r.status_code == 200
    assert r.json()["received"] == {"k": [1, "two"]}


def test_django_streaming(django_srv):
    r = requests.get(django_srv.url + "/stream/", timeout=10)
    assert r.status_code == 200
    assert r.content == b"part 0\npart 1\npart 2\n"


def test_django_404(django_srv):
    assert requests.get(django_srv.url + "/missing/", timeout=10).status_code == 404


# -- Paste Deploy -----------------------------------------------------------

def test_paste_config(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--pythonpath", EXAMPLES,
                "--paste", "config:%s" % example("paste.ini"))
    r = requests.get(s.url + "/some/where", timeout=10)
    assert r.status_code == 200
    assert r.text == "greetings from paste\ncolour=blue\npath=/some/where\n"


# -- loaders ----------------------------------------------------------------

def test_module_with_callable_suffix(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--pythonpath", EXAMPLES,
                "--module", "hello:application")
    assert requests.get(s.url, timeout=10).content == b"Hello, World!\n"


def test_module_default_callable_is_application(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--pythonpath", EXAMPLES, "--module", "hello")
    assert requests.get(s.url, timeout=10).content == b"Hello, World!\n"


def test_short_w_flag(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--pythonpath", EXAMPLES, "-w", "hello")
    assert requests.get(s.url, timeout=10).content == b"Hello, World!\n"


def test_module_dotted_package(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--pythonpath", EXAMPLES,
                "--module", "django_site.wsgi")
    assert requests.get(s.url + "/", timeout=10).text == "Hello from Django\n"


def test_wsgi_file_with_callable(spindle, tmp_path):
    app = tmp_path / "custom_callable.py"
    app.write_text(
        "def my_app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'custom callable\\n']\n")
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", str(app), "--callable", "my_app")
    assert requests.get(s.url, timeout=10).content == b"custom callable\n"


def test_chdir_and_relative_wsgi_file(spindle, tmp_path):
    d = tmp_path / "appdir"
    d.mkdir()
    (d / "rel_app.py").write_text(
        "import os\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [os.getcwd().encode()]\n")
    s = spindle("--http-socket", "127.0.0.1:0", "--chdir", str(d), "--wsgi-file", "rel_app.py")
    assert requests.get(s.url, timeout=10).text == str(d)


def test_env_option_reaches_app(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("probe.py"),
                "--env", "SPINDLE_TEST_VAR=hello there", "--env", "OTHER_VAR=2")
    r = requests.get(s.url + "/getenv", params={"name": "SPINDLE_TEST_VAR"}, timeout=10)
    assert r.json() == {"value": "hello there"}
    r = requests.get(s.url + "/getenv", params={"name": "OTHER_VAR"}, timeout=10)
    assert r.json() == {"value": "2"}


@pytest.mark.parametrize("kind", ["missing-file", "import-error"])
def test_unloadable_app_reported_and_never_200(spindle, tmp_path, kind):
    if kind == "missing-file":
        target, marker = str(tmp_path / "nope_31337.py"), "nope_31337.py"
    else:
        app = tmp_path / "broken.py"
        app.write_text("raise ImportError('broken on purpose 31337')\n")
        target, marker = str(app), "broken on purpose 31337"
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", target, start=False)
    try:
        s.start(timeout=10)
    except AssertionError:
        assert s.returncode not in (None, 0)  # refusing to start is fine
    else:
        # serving errors is fine too, as long as nobody gets a 200
        r = requests.get(s.url, timeout=10)
        assert r.status_code >= 500
    assert marker in s.log_text()


def test_raw_request_to_flask_keepalive(flask_srv):
    with RawConn(flask_srv.http_addr) as c:
        for _ in range(3):
            c.send(build_request("GET", "/"))
            r = c.read_response()
            assert r.status == 200 and r.body == b"Hello from Flask\n"
