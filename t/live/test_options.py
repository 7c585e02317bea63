"""Command line and ini files: errors exit 2 with one line naming the option
(and file:line for ini files), [spindle] and [uwsgi] sections, --help and
--version."""

import os
import re

import pytest
import requests

from harness import example, run_spindle

OPTIONS = ["--http-socket", "--socket", "--wsgi-file", "--module", "--callable", "--pythonpath",
           "--paste", "--chdir", "--env", "--processes", "--master", "--listen", "--buffer-size",
           "--max-requests", "--harakiri", "--http-timeout", "--socket-timeout", "--limit-post",
           "--disable-logging", "--loop", "--async", "--fibers", "--ini", "--help", "--version",
           "--worker-reload-mercy"]


def error_lines(stderr):
    return [l for l in stderr.splitlines() if l.strip()]


def test_help_lists_every_option(tmp_path):
    rc, out, err = run_spindle(["--help"], tmp_path)
    assert rc == 0, err
    text = out + err
    missing = [o for o in OPTIONS if not re.search(re.escape(o) + r"\b", text)]
    assert missing == [], "--help does not mention %s" % missing
    assert "-p" in text and "-w" in text


def test_version(tmp_path):
    rc, out, err = run_spindle(["--version"], tmp_path)
    assert rc == 0
    assert re.search(r"spindle \d+\.\d+", out + err)


@pytest.mark.parametrize("args,name", [
    (["--no-such-option"], "no-such-option"),
    (["--processes", "many"], "processes"),
    (["--processes", "-3"], "processes"),
    (["--harakiri", "soon"], "harakiri"),
    (["--buffer-size", "huge"], "buffer-size"),
    (["--http-socket"], "http-socket"),
    (["-Z"], "-Z"),
    (["--disable-logging=maybe"], "disable-logging"),
    (["--loop", "no-such-loop", "--http-socket", "127.0.0.1:0"], "loop"),
], ids=["unknown", "not-a-number", "negative", "bad-seconds", "bad-size", "missing-value",
        "unknown-short", "bad-bool", "unknown-loop"])
def test_bad_option_exits_2_with_one_line(tmp_path, args, name):
    rc, out, err = run_spindle(args + ["--wsgi-file", example("hello.py")], tmp_path)
    assert rc == 2, "exit %s; stderr: %s" % (rc, err)
    lines = error_lines(err)
    assert len(lines) == 1, "expected one line on stderr, got: %r" % lines
    assert name in lines[0]
    assert not os.listdir(tmp_path), "nothing may be created on a bad option"


def test_unknown_ini_key_is_a_placeholder_unless_strict(spindle, tmp_path):
    """A key uWSGI does not know either is a placeholder in an ini file: it
    may be used as %(key) and draws no warning; --strict refuses it with
    file:line."""
    ini = tmp_path / "ph.ini"
    ini.write_text("[other]\nwhatever = 1\n\n[spindle]\nhttp-socket = 127.0.0.1:0\n"
                   "wsgi-file = %s\nbogus-key = 7\nenv = FROM_PH=%%(bogus-key)\n"
                   % example("probe.py"))
    s = spindle("--ini", str(ini))
    assert requests.get(s.url + "/getenv", params={"name": "FROM_PH"},
                        timeout=10).json() == {"value": "7"}
    assert "bogus" not in s.log_text()
    rc, out, err = run_spindle(["--ini", str(ini), "--strict"], tmp_path)
    assert rc == 2
    lines = error_lines(err)
    assert len(lines) == 1, lines
    assert "%s:7" % ini in lines[0] and "bogus-key" in lines[0]


def test_every_refusal_of_a_file_in_one_run(tmp_path):
    ini = tmp_path / "many.ini"
    ini.write_text("[uwsgi]\nstrict = true\nhttp-socket = 127.0.0.1:0\nprocesses = lots\n"
                   "cheaper = 2\nharakiri = soon\nmy-placeholder = 1\n")
    rc, out, err = run_spindle(["--ini", str(ini)], tmp_path)
    assert rc == 2
    lines = error_lines(err)
    assert [l.split(": ")[1] for l in lines] == ["%s:%d" % (ini, n) for n in (4, 5, 6, 7)], lines
    assert "cheaper" in lines[1] and "would have" in lines[1]


def test_uwsgi_options_warn_once_with_their_fate(spindle, tmp_path):
    """Options uWSGI has and spindle does not use: one WARN line each at
    start-up, saying why (no effect) or what they would have done."""
    ini = tmp_path / "fates.ini"
    ini.write_text("[uwsgi]\nhttp = 127.0.0.1:0\nwsgi-file = %s\nmaster = true\n"
                   "thunder-lock = true\nenable-threads\ncheaper = 2\ncheaper-initial = 1\n"
                   "single-interpreter = false\n" % example("hello.py"))
    s = spindle("--ini", str(ini))
    assert requests.get(s.url, timeout=10).content == b"Hello, World!\n"
    log = s.log_text()
    warn = [l for l in log.splitlines() if " WARN " in l]
    assert len([l for l in warn if "--thunder-lock" in l]) == 1
    assert any("--thunder-lock (%s:5): no effect here: " % ini in l and "EPOLLEXCLUSIVE" in l
               for l in warn), warn
    assert any("--cheaper (%s:7): not supported" % ini in l and "would have" in l
               for l in warn), warn
    assert any("--enable-threads" in l for l in warn)
    # A flag turned off asks for nothing: no warning.
    assert "single-interpreter" not in log


def test_uwsgi_syntax_end_to_end(spindle, tmp_path):
    """A file in uWSGI's dialect: bare flags, placeholders, magic variables,
    arithmetic, $(ENV), if-env, for, an included section, UWSGI_* and
    SPINDLE_* variables, trailing comments."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "probe.py").write_text(open(example("probe.py")).read())
    ini = tmp_path / "site.ini"
    ini.write_text(
        "[uwsgi]\n"
        "project = app\n"
        "base = %d\n"
        "chdir = %(base)%(project)\n"
        "wsgi-file = probe.py\n"
        "http-socket = 127.0.0.1:0\n"
        "master\n"
        "vcpu = 1\n"
        "processes = %(vcpu * 2)   # two per core\n"
        "env = CONF_NAME=%n\n"
        "env = FROM_ENV=$(DEPLOY_COLOUR)\n"
        "if-env = DEPLOY_COLOUR=blue\n"
        "env = BLUE=%(_)\n"
        "endif\n"
        "for = x y\n"
        "env = LOOP_%(_)=1\n"
        "endfor\n"
        "ini = :extra\n"
        "[extra]\n"
        "env = SECTION=%x\n")
    s = spindle("--ini", str(ini), processes=2,
                env={"DEPLOY_COLOUR": "blue", "UWSGI_ENV": "UWSGI_VAR=u",
                     "SPINDLE_HARAKIRI": "30"})
    assert sorted(s.worker_pids()) == [1, 2]

    def env(name):
        return requests.get(s.url + "/getenv", params={"name": name}, timeout=10).json()["value"]
    assert env("CONF_NAME") == "site"
    assert env("FROM_ENV") == "blue"
    assert env("BLUE") == "blue"
    assert env("LOOP_x") == "1" and env("LOOP_y") == "1"
    assert env("SECTION") == "extra"
    assert env("UWSGI_VAR") == "u"
    cwd = requests.get(s.url + "/cwd", timeout=10)
    assert cwd.status_code == 200
    assert os.path.realpath(cwd.json()["cwd"]) == os.path.realpath(tmp_path / "app")


def test_bad_ini_value_names_file_and_line(tmp_path):
    ini = tmp_path / "badval.ini"
    ini.write_text("[uwsgi]\nhttp-socket = 127.0.0.1:0\nprocesses = lots\n")
    rc, out, err = run_spindle(["--ini", str(ini)], tmp_path)
    assert rc == 2
    lines = error_lines(err)
    assert len(lines) == 1 and "%s:3" % ini in lines[0] and "processes" in lines[0]


def test_missing_ini_file(tmp_path):
    rc, out, err = run_spindle(["--ini", str(tmp_path / "absent.ini")], tmp_path)
    assert rc == 2
    lines = error_lines(err)
    assert len(lines) == 1 and "absent.ini" in lines[0]


@pytest.mark.parametrize("section", ["spindle", "uwsgi"])
def test_ini_section_configures_server(spindle, tmp_path, section):
    ini = tmp_path / ("%s.ini" % section)
    ini.write_text(
        "; a comment\n# another\n[%s]\nhttp-socket = 127.0.0.1:0\nwsgi-file = %s\n"
        "processes = 2\nenv = FROM_INI=%s\nmax-requests = 100\n"
        "[app:main]\nuse = egg:something\n" % (section, example("probe.py"), section))
    s = spindle("--ini", str(ini), processes=2)
    assert sorted(s.worker_pids()) == [1, 2]
    r = requests.get(s.url + "/getenv", params={"name": "FROM_INI"}, timeout=10)
    assert r.json() == {"value": section}


def test_command_line_and_ini_combined(spindle, tmp_path):
    ini = tmp_path / "part.ini"
    ini.write_text("[spindle]\nwsgi-file = %s\n" % example("hello.py"))
    s = spindle("--ini", str(ini), "--http-socket", "127.0.0.1:0")
    assert requests.get(s.url, timeout=10).content == b"Hello, World!\n"


def test_equals_form_and_short_flags(spindle):
    s = spindle("--http-socket=127.0.0.1:0", "--wsgi-file=%s" % example("hello.py"), "-p", "2")
    assert sorted(s.worker_pids()) == [1, 2]
    assert requests.get(s.url, timeout=10).content == b"Hello, World!\n"


def test_listen_master_and_timeouts_accepted(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("hello.py"), "--master",
                "--listen", "64", "--socket-timeout", "5", "--http-timeout", "5",
                "--worker-reload-mercy", "5")
    assert requests.get(s.url, timeout=10).status_code == 200


def test_shipped_ini_files_parse(tmp_path):
    """The examples' ini files must parse (they may bind fixed ports, so they
    are not started here: --version after them exits before anything binds)."""
    for name in ("hello.ini", "uwsgi_compat.ini"):
        path = example(name)
        if not os.path.exists(path):
            continue
        rc, out, err = run_spindle(["--ini", path, "--version"], tmp_path)
        assert rc == 0, "%s: %s" % (name, err)
