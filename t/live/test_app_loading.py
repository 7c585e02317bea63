"""Apps load as under uWSGI: --chdir + --wsgi-file proj/wsgi.py, --home
(a real venv), --pyargv, --import, --wsgi-disable-file-wrapper, --mount with
and without --manage-script-name, bare bytes / str bodies, --lazy-apps (and
its one-by-one SIGHUP reload), --py-autoreload."""
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest
import requests

from harness import (EXAMPLES, example, http_request, pairing_args, pairing_names, run_spindle,
                     uwsgi_request, uwsgi_vars, wait_until)

APPS = os.path.join(EXAMPLES, "apps")


def get_json(srv, path):
    r = requests.get(srv.url + path, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


# -- --chdir: the working directory is on sys.path ---------------------------

def test_chdir_puts_the_project_dir_on_sys_path(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--chdir", os.path.join(APPS, "site"),
                "--wsgi-file", "proj/wsgi.py")
    r = requests.get(s.url + "/", timeout=10)
    assert r.status_code == 200 and r.text == "hello from proj.settings"


def test_chdir_serves_a_django_startproject_layout(spindle, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    subprocess.run(["/usr/bin/python3", "-m", "django", "startproject", "proj", str(site)],
                   check=True, timeout=60)
    s = spindle("--http-socket", "127.0.0.1:0", "--chdir", site, "--wsgi-file", "proj/wsgi.py")
    r = requests.get(s.url + "/", timeout=10)
    # DEBUG is on and no URL is routed yet: Django's own welcome page.
    assert r.status_code == 200 and "Django" in r.text


# -- --pyargv, --import, --wsgi-disable-file-wrapper -------------------------

def test_pyargv_import_and_file_wrapper(spindle, tmp_path):
    (tmp_path / "preloaded.py").write_text("import os\nVALUE = os.getpid()\n")
    (tmp_path / "by_path.py").write_text("VALUE = 'ran as a file'\n")
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("apps/echo_env.py"),
                "--pythonpath", tmp_path, "--pyargv=--verbose  -x\tlast",
                "--import", "preloaded", "--import", tmp_path / "by_path.py")
    body = get_json(s, "/?modules=preloaded,by_path")
    assert body["modules"]["by_path"] == "ran as a file"
    assert body["argv"] == ["spindle", "--verbose", "-x", "last"]
    # Imported before the app, where the app is loaded (the master): workers
    # inherit it, as under uWSGI.
    assert body["modules"]["preloaded"] == s.pid
    assert body["file_wrapper"] is True

    s2 = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("apps/echo_env.py"),
                 "--wsgi-disable-file-wrapper", name="nowrapper")
    assert get_json(s2, "/")["file_wrapper"] is False


def test_failing_import_stops_start_up(spindle, tmp_path):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("hello.py"),
                "--import", "no_such_module_here", start=False)
    with pytest.raises(AssertionError):
        s.start(timeout=10)
    assert "--import no_such_module_here failed" in s.log_text()
    assert "ModuleNotFoundError" in s.log_text()


# -- --home / --virtualenv / --venv: a real venv -----------------------------

@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A venv made by Debian's python3 -m venv, with a package that exists
    only in its site-packages (written there: no network)."""
    root = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(root)], check=True,
                   timeout=120)
    site = root / "lib" / "python3.11" / "site-packages" / "only_in_venv"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("VALUE = __file__\n")
    return root


@pytest.mark.parametrize("flag", ["-H", "--virtualenv", "--venv", "--home"])
def test_venv_site_packages_resolve(spindle, venv, flag):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("apps/echo_env.py"),
                flag, venv, "--import", "only_in_venv")
    body = get_json(s, "/?modules=only_in_venv,flask")
    assert body["modules"]["only_in_venv"].startswith(str(venv) + "/lib/python3.11/site-packages/")
    assert body["prefix"] == str(venv)
    # The venv was made without system site-packages: Debian's flask is not
    # importable from it, so imports really come from the venv.
    r = requests.get(s.url + "/", timeout=10)
    assert r.status_code == 200


def test_venv_hides_system_packages(spindle, venv, tmp_path):
    app = tmp_path / "needs_flask.py"
    app.write_text("import flask\napplication = None\n")
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", app, "--venv", venv, start=False)
    with pytest.raises(AssertionError):
        s.start(timeout=10)
    assert "No module named 'flask'" in s.log_text()


def test_venv_of_another_python_is_refused(venv, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(venv, other, symlinks=True)
    cfg = (other / "pyvenv.cfg").read_text()
    (other / "pyvenv.cfg").write_text(
        "\n".join("version = 3.9.7" if l.startswith("version") else l for l in cfg.splitlines()))
    rc, out, err = run_spindle(["--http-socket", "127.0.0.1:0", "--wsgi-file",
                                example("hello.py"), "--virtualenv", other], tmp_path)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "--virtualenv" in lines[0] and "Python 3.9" in lines[0] and "3.11" in lines[0]

    rc, out, err = run_spindle(["--http-socket", "127.0.0.1:0", "--wsgi-file",
                                example("hello.py"), "-H", tmp_path / "missing"], tmp_path)
    assert rc == 2 and "--home" in err and "not a directory" in err


# -- bare bytes and str bodies -----------------------------------------------

@pytest.mark.parametrize("pairing", pairing_names())
def test_bare_bytes_and_str_bodies(spindle, pairing):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("apps/bodies.py"),
                *pairing_args(pairing, 4), extra=False)
    r = http_request(s.http_addr, "GET", "/bytes")
    assert r.status == 200 and r.body == b"a bare bytes body, sent whole"
    assert r.header("Content-Length") == str(len(r.body))
    for path in ("/str", "/str-chunk"):
        r = http_request(s.http_addr, "GET", path)
        assert r.status == 500, path
    s.wait_for_log(r"TypeError: the application returned str; "
                   r"a WSGI body is an iterable of bytes")
    s.wait_for_log(r"TypeError: the application returned str \(as a chunk of its body\); "
                   r"a WSGI body is an iterable of bytes")
    assert "got int" not in s.log_text()
    # The worker lives on.
    assert http_request(s.http_addr, "GET", "/bytes").status == 200


# -- --mount and --manage-script-name ----------------------------------------

MOUNTS = ["--wsgi-file", example("apps/echo_env.py"),
          "--mount", "/blog=" + example("apps/echo_env.py"),
          "--mount", "/blog/admin/=" + example("apps/echo_env.py"),
          "--mount", "/api=bodies:application", "--pythonpath", APPS]


def test_mount_with_manage_script_name(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", *MOUNTS, "--manage-script-name")
    cases = {
        "/": ("echo_env", "", "/"),
        "/blog": ("spindle_wsgi_file", "/blog", ""),
        "/blog/": ("spindle_wsgi_file", "/blog", "/"),
        "/blog/post/1": ("spindle_wsgi_file", "/blog", "/post/1"),
        "/blog/admin/users": ("spindle_wsgi_file_2", "/blog/admin", "/users"),
        "/blogs": ("echo_env", "", "/blogs"),
        "/blog%2Fadmin/x": ("spindle_wsgi_file_2", "/blog/admin", "/x"),
    }
    for path, (app, script, info) in cases.items():
        body = get_json(s, path)
        assert (body["app"], body["script_name"], body["path_info"]) == (app, script, info), path
    r = requests.get(s.url + "/api/bytes", timeout=10)
    assert r.text == "a bare bytes body, sent whole"


def test_mount_without_manage_script_name_follows_script_name(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--socket", "127.0.0.1:0", *MOUNTS)
    # Over HTTP there is no SCRIPT_NAME: the root app gets everything.
    body = get_json(s, "/blog/post")
    assert (body["app"], body["script_name"], body["path_info"]) == ("echo_env", "", "/blog/post")
    # nginx `uwsgi_param SCRIPT_NAME /blog;` chooses the app; the variables
    # reach it as sent.
    v = uwsgi_vars("GET", "/blog/post")
    v["SCRIPT_NAME"] = "/blog"
    r = uwsgi_request(s.uwsgi_addr, v)
    body = json.loads(r.body)
    assert (body["app"], body["script_name"], body["path_info"]) == (
        "spindle_wsgi_file", "/blog", "/blog/post")


def test_mounts_without_a_root_app(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--manage-script-name",
                "--mount", "/blog=" + example("apps/echo_env.py"))
    assert get_json(s, "/blog/x")["path_info"] == "/x"
    assert requests.get(s.url + "/elsewhere", timeout=10).status_code == 500
    s.wait_for_log(r"GET /elsewhere: no application is mounted for it")


def test_bad_mount_is_refused(tmp_path):
    for value, words in (("blog.py", "MOUNTPOINT=APP"), ("blog=x.py", "start with '/'"),
                         ("/blog=justamodule", "MODULE:CALLABLE")):
        rc, out, err = run_spindle(["--http-socket", "127.0.0.1:0", "--mount", value], tmp_path)
        assert rc == 2 and len(err.strip().splitlines()) == 1, err
        assert "--mount" in err and words in err, err


# -- --lazy-apps --------------------------------------------------------------

def lazy_state(srv):
    loaded_in, pid, version, ticks = requests.get(srv.url + "/", timeout=10).text.split()
    return int(loaded_in), int(pid), version, int(ticks)


@pytest.mark.parametrize("pairing", pairing_names())
def test_lazy_apps_load_in_each_worker(spindle, pairing):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("apps/lazy.py"),
                "--lazy-apps", "--processes", "2", *pairing_args(pairing, 4), extra=False)
    seen = {}
    deadline = time.monotonic() + 20
    while len(seen) < 2 and time.monotonic() < deadline:
        loaded_in, pid, _, _ = lazy_state(s)
        assert loaded_in == pid, "the app was not loaded in the worker that serves it"
        seen[pid] = True
    assert set(seen) <= set(s.worker_pids().values())
    # The thread started at import runs in the worker.
    first = lazy_state(s)[3]
    wait_until(lambda: lazy_state(s)[3] > first + 3, 10, what="the import-time thread to tick")
    assert len(s.wait_for_log(r"worker \d loaded its apps \(lazy-apps\)", count=2)) == 2


def test_lazy_apps_sighup_replaces_workers_one_by_one(spindle, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    shutil.copy(example("apps/lazy.py"), code / "lazy.py")
    (code / "version.txt").write_text("1")
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", code / "lazy.py", "--lazy-apps",
                "--processes", "2")
    old = set(s.worker_pids().values())
    failures = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                if requests.get(s.url + "/", timeout=10).status_code != 200:
                    failures.append("status")
            except requests.RequestException as e:
                failures.append(repr(e))

    t = threading.Thread(target=hammer)
    t.start()
    try:
        (code / "version.txt").write_text("2")
        at = s.log_offset()
        s.signal(signal.SIGHUP)
        s.wait_for_log(r"reload: done", timeout=30, after=at)
    finally:
        stop.set()
        t.join(30)
    assert not failures, failures[:3]
    text = s.log_text()[at:]
    # One at a time: worker 1's replacement was ready before the old worker 1
    # stopped, and that happened before worker 2 was replaced.
    w1_ready = text.index("reload: worker 1")
    w2_loaded = text.index("worker 2 loaded its apps")
    assert w1_ready < w2_loaded
    wait_until(lambda: not (old & {p for p in s.worker_pids().values()}), 10,
               what="new worker pids")
    for _ in range(6):
        loaded_in, pid, version, _ = lazy_state(s)
        assert version == "2" and pid not in old and loaded_in == pid


def test_lazy_apps_reload_with_broken_code_keeps_the_old_workers(spindle, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    shutil.copy(example("apps/lazy.py"), code / "lazy.py")
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", code / "lazy.py", "--lazy-apps",
                "--processes", "2")
    old = set(s.worker_pids().values())
    (code / "lazy.py").write_text("this is not python\n")
    at = s.log_offset()
    s.signal(signal.SIGHUP)
    s.wait_for_log(r"reload stopped: the new worker 1 .* before it was ready", timeout=30,
                   after=at)
    for _ in range(6):
        assert lazy_state(s)[1] in old
    assert s.alive()


# -- --py-autoreload -----------------------------------------------------------

@pytest.mark.parametrize("pairing", pairing_names())
def test_py_autoreload_reloads_when_a_module_changes(spindle, tmp_path, pairing):
    code = tmp_path / "code"
    code.mkdir()
    (code / "helper.py").write_text("WORD = 'before'\n")
    (code / "app.py").write_text(
        "import helper\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [helper.WORD.encode()]\n")
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", code / "app.py",
                "--py-autoreload", "1", *pairing_args(pairing, 4), extra=False)
    assert requests.get(s.url, timeout=10).text == "before"
    before = os.stat(code / "helper.py").st_mtime
    (code / "helper.py").write_text("WORD = 'after'\n")
    # A distinct mtime even on a file system with coarse timestamps.
    os.utime(code / "helper.py", (before + 2, before + 2))
    s.wait_for_log(r"py-autoreload: .*helper\.py changed; asking the master to reload",
                   timeout=20)
    wait_until(lambda: requests.get(s.url, timeout=10).text == "after", 30,
               what="the reloaded code")
