"""Static files served by the server before the app, from the loop, with no
async core: --static-map, --static-map2, --check-static, --static-index,
--static-safe, --static-expires-type; Content-Type, Last-Modified and
If-Modified-Since (304), Range (206, 416), HEAD; and a traversal set sent
raw over the wire (dot segments, percent-encoded ones, symlinks)."""
import email.utils
import hashlib
import os
import time

import pytest
import requests

from harness import EXAMPLES, RawConn, build_request, example, http_request, pairing_args, pairing_names

STATIC = os.path.join(EXAMPLES, "apps", "static")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """www/ (the root) beside secret.txt, a safe/ dir, symlinks out of www,
    and a large file."""
    base = tmp_path_factory.mktemp("static")
    www = base / "www"
    (www / "sub").mkdir(parents=True)
    (www / "empty").mkdir()
    (base / "safe").mkdir()
    (www / "index.html").write_text("<p>home</p>")
    (www / "sub" / "page.html").write_text("<p>sub</p>")
    (www / "app.js").write_text("run();")
    (www / "digits.txt").write_text("0123456789")
    (www / "big.bin").write_bytes(os.urandom(6 << 20))
    (base / "secret.txt").write_text("TOP SECRET")
    (base / "safe" / "lib.js").write_text("lib();")
    os.symlink(base / "secret.txt", www / "leak.txt")
    os.symlink(base, www / "up")
    os.symlink(base / "safe" / "lib.js", www / "lib.js")
    return base


def serve(spindle, tree, *args, engines=None, **kw):
    extra = engines is None
    return spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("async/sleeper.py"),
                   "--static-map", "/static=%s" % (tree / "www"), "--static-index", "index.html",
                   *args, *(engines or []), extra=extra, **kw)


@pytest.mark.parametrize("pairing", pairing_names())
def test_static_files_take_no_core(spindle, tree, pairing):
    s = serve(spindle, tree, engines=pairing_args(pairing, 1))
    r = requests.get(s.url + "/static/app.js", timeout=10)
    assert r.status_code == 200 and r.text == "run();"
    assert r.headers["Content-Type"] == "text/javascript"
    # The only core is held by a request parked for 3 s: an app request
    # waits for it, a static file does not.
    with RawConn(s.http_addr, timeout=30) as holder:
        holder.send(build_request("GET", "/sleep?s=3"))
        with pytest.raises(requests.Timeout):
            requests.get(s.url + "/hello", timeout=1)  # the core is busy
        t0 = time.monotonic()
        for _ in range(5):
            r = requests.get(s.url + "/static/sub/page.html", timeout=10)
            assert r.status_code == 200 and r.text == "<p>sub</p>"
        assert time.monotonic() - t0 < 2.5, "static requests waited for the busy core"
        assert holder.read_response().status == 200
    # A file larger than the socket buffers, read by a slow client: the loop
    # resumes the send when the socket drains.
    with requests.get(s.url + "/static/big.bin", stream=True, timeout=30) as r:
        h = hashlib.sha256()
        for chunk in r.iter_content(256 << 10):
            h.update(chunk)
            time.sleep(0.005)
    assert h.hexdigest() == hashlib.sha256((tree / "www" / "big.bin").read_bytes()).hexdigest()
    assert len([l for l in s.access_lines() if "/static/" in l]) >= 7


def test_head_conditional_and_ranges(spindle, tree):
    s = serve(spindle, tree)
    r = http_request(s.http_addr, "GET", "/static/digits.txt")
    assert r.status == 200 and r.body == b"0123456789"
    assert r.header("Content-Type") == "text/plain"
    assert r.header("Content-Length") == "10"
    assert r.header("Accept-Ranges") == "bytes"
    assert r.header("Server") == "spindle"
    assert abs(email.utils.parsedate_to_datetime(r.header("Date")).timestamp() - time.time()) < 5
    lm = r.header("Last-Modified")
    mtime = int(os.stat(tree / "www" / "digits.txt").st_mtime)
    assert email.utils.parsedate_to_datetime(lm).timestamp() == mtime

    r = http_request(s.http_addr, "HEAD", "/static/digits.txt")
    assert r.status == 200 and r.body == b"" and r.header("Content-Length") == "10"

    r = http_request(s.http_addr, "GET", "/static/digits.txt", [("If-Modified-Since", lm)])
    assert r.status == 304 and r.body == b""
    older = email.utils.formatdate(mtime - 3600, usegmt=True)
    r = http_request(s.http_addr, "GET", "/static/digits.txt", [("If-Modified-Since", older)])
    assert r.status == 200 and r.body == b"0123456789"

    r = http_request(s.http_addr, "GET", "/static/digits.txt", [("Range", "bytes=3-6")])
    assert r.status == 206 and r.body == b"3456"
    assert r.header("Content-Range") == "bytes 3-6/10"
    r = http_request(s.http_addr, "GET", "/static/digits.txt", [("Range", "bytes=-2")])
    assert r.status == 206 and r.body == b"89"
    r = http_request(s.http_addr, "GET", "/static/digits.txt", [("Range", "bytes=99-")])
    assert r.status == 416 and r.header("Content-Range") == "bytes */10"
    r = http_request(s.http_addr, "GET", "/static/digits.txt",
                     [("Range", "bytes=0-1"), ("If-Range", older)])
    assert r.status == 200 and r.body == b"0123456789"

    # Directories: the index file, or the app when there is none.
    assert http_request(s.http_addr, "GET", "/static/").body == b"<p>home</p>"
    assert http_request(s.http_addr, "GET", "/static").body == b"<p>home</p>"
    r = http_request(s.http_addr, "GET", "/static/empty/")
    assert r.status == 404 or b"sleeper" in r.body or r.status == 200
    assert r.header("Last-Modified") is None  # the app answered
    # Missing files and other methods go to the app.
    assert http_request(s.http_addr, "GET", "/static/missing.css").header("Last-Modified") is None
    assert http_request(s.http_addr, "POST", "/static/app.js").header("Last-Modified") is None
    # Keep-alive and pipelining across static and app answers.
    with RawConn(s.http_addr) as c:
        c.send(build_request("GET", "/static/app.js") + build_request("GET", "/hello")
               + build_request("GET", "/static/digits.txt", [("Range", "bytes=0-0")]))
        assert c.read_response().body == b"run();"
        assert b"ello" in c.read_response().body
        assert c.read_response().body == b"0"


TRAVERSALS = [
    "/static/../secret.txt",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2e/secret.txt",
    "/static/.%2e/secret.txt",
    "/static/sub/../../secret.txt",
    "/static/sub/%2e%2e/%2e%2e/secret.txt",
    "/static/%2e%2e%2fsecret.txt",
    "/static/..%2fsecret.txt",
    "/static/..%5csecret.txt",
    "/static/sub/..%2f..%2fsecret.txt",
    "/static//../secret.txt",
    "/static/./../secret.txt",
    "/static/leak.txt",
    "/static/up/secret.txt",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/secret.txt%00.html",
    "/static/%2e%2e/x%0d%0aERROR%20forged",
]


def test_traversal_set(spindle, tree):
    s = serve(spindle, tree, "--check-static", tree / "www")
    for path in TRAVERSALS:
        with RawConn(s.http_addr) as c:
            c.send(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
            try:
                r = c.read_response()
            except Exception:
                continue  # refused at the parser: nothing leaked either
        assert b"TOP SECRET" not in r.body and b"root:" not in r.body, path
        assert r.status == 403, (path, r)
    assert b"TOP SECRET" not in http_request(s.http_addr, "GET", "/../secret.txt").body
    # The symlink back into the root is inside it.
    assert http_request(s.http_addr, "GET", "/static/up/www/app.js").body == b"run();"
    assert "static: refused" in s.log_text()
    assert "\\x0d\\x0aERROR forged" in s.log_text()  # escaped, not a log line of its own


def test_static_safe_and_expires(spindle, tree):
    s = serve(spindle, tree, "--static-safe", tree / "safe", "--static-expires-type",
              "text/javascript=600")
    r = http_request(s.http_addr, "GET", "/static/lib.js")
    assert r.status == 200 and r.body == b"lib();"
    expires = email.utils.parsedate_to_datetime(r.header("Expires")).timestamp()
    assert 500 < expires - time.time() < 700
    assert http_request(s.http_addr, "GET", "/static/leak.txt").status == 403
    assert http_request(s.http_addr, "GET", "/static/index.html").header("Expires") is None


def test_static_map2_and_check_static(spindle):
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("hello.py"),
                "--static-map2", "/static=%s" % os.path.dirname(STATIC),
                "--check-static", os.path.join(STATIC, "docs"))
    r = requests.get(s.url + "/static/css/site.css", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/css"
    assert r.text == open(os.path.join(STATIC, "css", "site.css")).read()
    r = requests.get(s.url + "/readme.txt", timeout=10)
    assert r.text == "plain words\n"
    assert requests.get(s.url + "/anything", timeout=10).text == "Hello, World!\n"


def test_static_over_the_uwsgi_protocol(spindle, tree):
    from harness import uwsgi_request, uwsgi_vars
    s = serve(spindle, tree, "--socket", "127.0.0.1:0")
    r = uwsgi_request(s.uwsgi_addr, uwsgi_vars("GET", "/static/app.js"))
    assert r.status == 200 and r.body == b"run();"
    v = uwsgi_vars("GET", "/static/digits.txt")
    v["HTTP_RANGE"] = "bytes=1-2"
    r = uwsgi_request(s.uwsgi_addr, v)
    assert r.status == 206 and r.body == b"12"


def test_bad_static_options(tmp_path):
    from harness import run_spindle
    for args, words in ((["--static-map", "static=/tmp"], "/URL=DIR"),
                        (["--static-map2", "/x"], "/URL=DIR"),
                        (["--static-expires-type", "text/css"], "TYPE=SECONDS")):
        rc, out, err = run_spindle(["--http-socket", "127.0.0.1:0", "--wsgi-file",
                                    example("hello.py")] + args, tmp_path)
        assert rc == 2 and words in err and args[0] in err, err


def test_app_request_after_a_static_one_sees_its_own_variables(spindle, tree):
    """Regression: the variables built for the static lookup of one request
    must not be reused for the next one (a POST, which skips the lookup)."""
    import json
    s = spindle("--http-socket", "127.0.0.1:0", "--wsgi-file", example("apps/echo_env.py"),
                "--static-map", "/static=%s" % (tree / "www"))
    with RawConn(s.http_addr) as c:
        # The POST's body comes later: its head alone reaches the server.
        c.send(build_request("GET", "/static/app.js")
               + build_request("POST", "/after", [("Content-Length", "3")]))
        assert c.read_response().body == b"run();"
        c.send(b"x=1")
        assert json.loads(c.read_response().body)["path_info"] == "/after"


def test_http10_static_answers_keep_or_close_the_connection(spindle, tree):
    s = serve(spindle, tree)
    with RawConn(s.http_addr) as c:
        c.send(b"GET /static/app.js HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.body == b"run();" and r.header("Connection") == "close"
        assert c.wait_closed()
    with RawConn(s.http_addr) as c:
        c.send(b"GET /static/app.js HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.body == b"run();" and r.header("Connection").lower() == "keep-alive"
        c.send(b"HEAD /static/digits.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response("HEAD")
        assert r.status == 200 and r.header("Content-Length") == "10" and r.body == b""
