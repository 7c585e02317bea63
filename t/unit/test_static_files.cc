// Static files: which file a path names, and which it must never name (the
// traversal set), MIME types, Range, If-Modified-Since, dates. Real files in
// a temp directory; no sockets (t/live/test_static_map.py sends them).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/config.hh"
#include "core/static_files.hh"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

namespace {

using spindle::core::Config;
using spindle::core::StaticAnswer;
using spindle::core::StaticFiles;
using spindle::core::StaticRequest;

struct Tree {
  std::string root;  // <tmp>/
  Tree() {
    char tmpl[] = "/tmp/spindle-static-XXXXXX";
    root = std::string(mkdtemp(tmpl)) + "/";
    mkdir((root + "www").c_str(), 0755);
    mkdir((root + "www/sub").c_str(), 0755);
    mkdir((root + "www/noindex").c_str(), 0755);
    mkdir((root + "safe").c_str(), 0755);
    write("www/index.html", "<h1>home</h1>");
    write("www/style.css", "body{}");
    write("www/sub/index.html", "sub index");
    write("www/data.bin", "0123456789");
    write("www/UPPER.PNG", "png");
    write("secret.txt", "top secret");
    write("safe/shared.js", "shared()");
    symlink((root + "secret.txt").c_str(), (root + "www/leak.txt").c_str());
    symlink(root.c_str(), (root + "www/up").c_str());
    symlink((root + "safe/shared.js").c_str(), (root + "www/shared.js").c_str());
  }
  ~Tree() {
    std::string cmd = "rm -rf '" + root + "'";
    if (std::system(cmd.c_str()) != 0) return;
  }
  void write(const std::string& rel, const std::string& body) const {
    int fd = open((root + rel).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (::write(fd, body.data(), body.size()) < 0) fd = -1;
    close(fd);
  }
};

std::string read_answer(const StaticAnswer& a) {
  std::string out(a.length, '\0');
  ssize_t n = pread(a.fd, out.data(), a.length, a.offset);
  close(a.fd);
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

StaticAnswer get(const StaticFiles& sf, std::string_view path, std::string_view range = {},
                 std::string_view ims = {}, std::string_view method = "GET") {
  StaticRequest r;
  r.method = method;
  r.path = path;
  r.range = range;
  r.if_modified_since = ims;
  return sf.lookup(r);
}

bool has_field(const StaticAnswer& a, const std::string& line) {
  return a.fields.find(line + "\r\n") != std::string::npos;
}

Config config_for(const Tree& t) {
  Config cfg;
  cfg.static_maps.push_back("/static=" + t.root + "www");
  cfg.static_index.push_back("index.html");
  return cfg;
}

void test_serves_files_under_the_prefix(void**) {
  Tree t;
  StaticFiles sf;
  sf.init(config_for(t));
  StaticAnswer a = get(sf, "/static/style.css");
  assert_int_equal(a.kind, StaticAnswer::kFile);
  assert_int_equal(a.status, 200);
  assert_true(has_field(a, "Content-Type: text/css"));
  assert_true(has_field(a, "Content-Length: 6"));
  assert_string_equal(read_answer(a).c_str(), "body{}");
  // A directory: its index file; without one, the app's.
  a = get(sf, "/static/sub/");
  assert_string_equal(read_answer(a).c_str(), "sub index");
  a = get(sf, "/static");
  assert_string_equal(read_answer(a).c_str(), "<h1>home</h1>");
  assert_int_equal(get(sf, "/static/noindex/").kind, StaticAnswer::kPass);
  // Missing files, other prefixes, other methods: the app's.
  assert_int_equal(get(sf, "/static/nope.css").kind, StaticAnswer::kPass);
  assert_int_equal(get(sf, "/staticfoo/style.css").kind, StaticAnswer::kPass);
  assert_int_equal(get(sf, "/other/style.css").kind, StaticAnswer::kPass);
  assert_int_equal(get(sf, "/static/style.css", {}, {}, "POST").kind, StaticAnswer::kPass);
  a = get(sf, "/static/style.css", {}, {}, "HEAD");
  assert_int_equal(a.kind, StaticAnswer::kFile);
  close(a.fd);
}

// Every one of these names a file outside the root (or tries to): none may
// be opened. PATH_INFO arrives percent-decoded, so "%2e%2e" is ".." here.
void test_traversal_set(void**) {
  Tree t;
  StaticFiles sf;
  sf.init(config_for(t));
  const char* attacks[] = {
      "/static/../secret.txt",
      "/static/sub/../../secret.txt",
      "/static/..",
      "/static/../",
      "/static/./../secret.txt",
      "/static//../secret.txt",
      "/static/sub/..",
      "/static/..\\secret.txt",
      "/static/leak.txt",
      "/static/up/secret.txt",
      "/static/sub/../../../../../../etc/passwd",
  };
  for (const char* path : attacks) {
    StaticAnswer a = get(sf, path);
    if (a.kind == StaticAnswer::kFile) {
      std::string body = read_answer(a);
      print_error("%s served %s\n", path, body.c_str());
      fail();
    }
    if (a.kind != StaticAnswer::kNoBody || a.status != 403) {
      print_error("%s: expected 403, got kind %d status %d\n", path, a.kind, a.status);
      fail();
    }
  }
  // A symlink that leaves the root and comes back in names a file inside it.
  StaticAnswer back = get(sf, "/static/up/www/style.css");
  assert_string_equal(read_answer(back).c_str(), "body{}");
  std::string nul("/static/style.css\0.png", 22);
  assert_int_equal(get(sf, nul).status, 403);
  // A dot-dot inside a name is not a segment.
  t.write("www/a..b.txt", "dots");
  StaticAnswer a = get(sf, "/static/a..b.txt");
  assert_string_equal(read_answer(a).c_str(), "dots");
}

void test_static_safe_allows_symlinks_into_it(void**) {
  Tree t;
  Config cfg = config_for(t);
  StaticFiles strict;
  strict.init(cfg);
  assert_int_equal(get(strict, "/static/shared.js").status, 403);
  cfg.static_safe.push_back(t.root + "safe");
  StaticFiles sf;
  sf.init(cfg);
  assert_string_equal(read_answer(get(sf, "/static/shared.js")).c_str(), "shared()");
  assert_int_equal(get(sf, "/static/leak.txt").status, 403);  // still outside
}

void test_map2_and_check_static(void**) {
  Tree t;
  Config cfg;
  cfg.static_maps2.push_back("/www=" + t.root);
  StaticFiles sf;
  sf.init(cfg);
  assert_string_equal(read_answer(get(sf, "/www/style.css")).c_str(), "body{}");
  assert_int_equal(get(sf, "/style.css").kind, StaticAnswer::kPass);
  Config cfg2;
  cfg2.check_static.push_back(t.root + "www");
  StaticFiles cs;
  cs.init(cfg2);
  assert_string_equal(read_answer(get(cs, "/data.bin")).c_str(), "0123456789");
  assert_int_equal(get(cs, "/../secret.txt").status, 403);
  assert_int_equal(get(cs, "/app/route").kind, StaticAnswer::kPass);
}

// A mapping to one file (uWSGI: static-map /favicon.ico=/srv/icon.ico).
void test_map_to_a_single_file(void**) {
  Tree t;
  Config cfg;
  cfg.static_maps.push_back("/robots.txt=" + t.root + "www/data.bin");
  StaticFiles sf;
  sf.init(cfg);
  assert_string_equal(read_answer(get(sf, "/robots.txt")).c_str(), "0123456789");
  assert_int_equal(get(sf, "/robots.txt/x").kind, StaticAnswer::kPass);
  assert_int_equal(get(sf, "/robots.txt/../secret.txt").status, 403);
  assert_int_equal(get(sf, "/robots.txtx").kind, StaticAnswer::kPass);
}

void test_ranges(void**) {
  Tree t;
  StaticFiles sf;
  sf.init(config_for(t));
  StaticAnswer a = get(sf, "/static/data.bin", "bytes=2-5");
  assert_int_equal(a.status, 206);
  assert_true(has_field(a, "Content-Range: bytes 2-5/10"));
  assert_true(has_field(a, "Content-Length: 4"));
  assert_string_equal(read_answer(a).c_str(), "2345");
  a = get(sf, "/static/data.bin", "bytes=7-");
  assert_string_equal(read_answer(a).c_str(), "789");
  a = get(sf, "/static/data.bin", "bytes=-3");
  assert_string_equal(read_answer(a).c_str(), "789");
  a = get(sf, "/static/data.bin", "bytes=8-100");
  assert_string_equal(read_answer(a).c_str(), "89");
  a = get(sf, "/static/data.bin", "bytes=10-");
  assert_int_equal(a.status, 416);
  assert_true(has_field(a, "Content-Range: bytes */10"));
  // Several ranges or nonsense: the whole file.
  for (const char* r : {"bytes=0-1,4-5", "lines=1-2", "bytes=5-2", "bytes=x-"}) {
    a = get(sf, "/static/data.bin", r);
    assert_int_equal(a.status, 200);
    assert_string_equal(read_answer(a).c_str(), "0123456789");
  }
}

void test_if_modified_since(void**) {
  Tree t;
  StaticFiles sf;
  sf.init(config_for(t));
  struct stat st;
  stat((t.root + "www/style.css").c_str(), &st);
  std::string lm = StaticFiles::http_date(st.st_mtim.tv_sec);
  StaticAnswer a = get(sf, "/static/style.css", {}, lm);
  assert_int_equal(a.status, 304);
  assert_int_equal(a.kind, StaticAnswer::kNoBody);
  a = get(sf, "/static/style.css", {}, StaticFiles::http_date(st.st_mtim.tv_sec - 60));
  assert_int_equal(a.status, 200);
  close(a.fd);
  a = get(sf, "/static/style.css", {}, "yesterday");
  assert_int_equal(a.status, 200);
  close(a.fd);
}

void test_dates_and_mime(void**) {
  assert_string_equal(StaticFiles::http_date(784111777).c_str(), "Sun, 06 Nov 1994 08:49:37 GMT");
  assert_int_equal(StaticFiles::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  assert_int_equal(StaticFiles::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), -1);
  assert_int_equal(StaticFiles::parse_http_date("Sun, 06 Nox 1994 08:49:37 GMT"), -1);
  Config cfg;
  StaticFiles sf;
  sf.init(cfg);
  assert_string_equal(std::string(sf.mime_type("a/b.html")).c_str(), "text/html");
  assert_string_equal(std::string(sf.mime_type("x.PNG")).c_str(), "image/png");
  assert_string_equal(std::string(sf.mime_type("x.woff2")).c_str(), "font/woff2");
  assert_true(sf.mime_type("x.unknownext").empty());
  assert_true(sf.mime_type("dir.d/noext").empty());
  // A types file adds to the table.
  Tree t;
  t.write("types", "# comment\napplication/x-spindle spx spy\n");
  sf.load_mime_types(t.root + "types");
  assert_string_equal(std::string(sf.mime_type("f.spy")).c_str(), "application/x-spindle");
}

void test_expires_type(void**) {
  Tree t;
  Config cfg = config_for(t);
  cfg.static_expires_type.push_back("text/css=3600");
  StaticFiles sf;
  sf.init(cfg);
  StaticAnswer a = get(sf, "/static/style.css");
  assert_true(a.fields.find("Expires: ") != std::string::npos);
  close(a.fd);
  a = get(sf, "/static/index.html");
  assert_true(a.fields.find("Expires: ") == std::string::npos);
  close(a.fd);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_serves_files_under_the_prefix),
      cmocka_unit_test(test_traversal_set),
      cmocka_unit_test(test_static_safe_allows_symlinks_into_it),
      cmocka_unit_test(test_map2_and_check_static),
      cmocka_unit_test(test_map_to_a_single_file),
      cmocka_unit_test(test_ranges),
      cmocka_unit_test(test_if_modified_since),
      cmocka_unit_test(test_dates_and_mime),
      cmocka_unit_test(test_expires_type),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
