// The option table: command line, ini files and --help from one declaration,
// and every core row checked to be reachable from both the command line and
// an ini file.
#include <fcntl.h>
#include <ftw.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/config.hh"
#include "core/options.hh"
#include "core/plugin.hh"
#include "core/uwsgi_names.hh"

// Project headers come before <cmocka.h>: its fail() macro would rewrite
// any member function named fail (core::Exchange has one).
extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

namespace {

using spindle::core::Config;
using spindle::core::OptionDef;
using spindle::core::OptionTable;

// A fresh table with the core rows, bound to its own Config.
struct Core {
  Config cfg;
  OptionTable table;
  explicit Core(bool uwsgi_rows = true) {
    add_core_options(table, cfg);
    if (uwsgi_rows) spindle::core::add_uwsgi_rows(table);
  }
};

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/spindle_options_XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      print_error("mkdtemp failed: %s\n", std::strerror(errno));
      fail();
    }
    path_ = tmpl;
  }
  ~TempDir() {
    nftw(
        path_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  const std::string& path() const { return path_; }

  // Writes name (which may contain one level of subfolder) and returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    std::string full = path_ + "/" + name;
    std::size_t slash = name.find('/');
    if (slash != std::string::npos) mkdir((path_ + "/" + name.substr(0, slash)).c_str(), 0700);
    std::ofstream out(full);
    out << text;
    return full;
  }

 private:
  std::string path_;
};

int parse(OptionTable& table, std::vector<std::string> args, std::string* err) {
  args.insert(args.begin(), "spindle");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  err->clear();
  return table.parse_args(static_cast<int>(argv.size()), argv.data(), err);
}

std::string join(const std::vector<std::string>& args) {
  std::string out;
  for (const std::string& a : args) out += (out.empty() ? "" : " ") + a;
  return out;
}

// Every error is one line, code 2, and says what it is about.
void expect_error(int rc, const std::string& err, const std::string& expected_part,
                  const std::string& context) {
  if (rc != 2 || err.find('\n') != std::string::npos ||
      err.find(expected_part) == std::string::npos) {
    print_error("%s: rc=%d err='%s', wanted rc=2 and one line containing '%s'\n", context.c_str(),
                rc, err.c_str(), expected_part.c_str());
    fail();
  }
}

// The error text is only meaningful after a failure, so only rc is checked.
void expect_ok(int rc, const std::string& err, const std::string& context) {
  if (rc != 0) {
    print_error("%s: rc=%d err='%s'\n", context.c_str(), rc, err.c_str());
    fail();
  }
}

// A valid value for each row, so the table walk can exercise it. A row that
// is not listed here fails the walk: whoever adds a core row adds its sample.
// Flags are listed with "true".
std::optional<std::string> sample_value(const OptionDef& row, const TempDir& dir) {
  static const std::map<std::string, std::string> kSamples = {
      {"http-socket", "127.0.0.1:0"},
      {"socket", "127.0.0.1:0"},
      {"uwsgi-socket", "/tmp/spindle.sock"},
      {"listen", "128"},
      {"processes", "4"},
      {"workers", "2"},
      {"master", "true"},
      {"max-requests", "1000"},
      {"harakiri", "30"},
      {"worker-reload-mercy", "250ms"},
      {"lazy-apps", "true"},
      {"static-map", "/static=/tmp"},
      {"static-map2", "/media=/tmp"},
      {"check-static", "/tmp"},
      {"static-check", "/tmp"},
      {"static-index", "index.html"},
      {"static-safe", "/usr/share"},
      {"static-expires-type", "text/css=3600"},
      {"buffer-size", "64k"},
      {"http-timeout", "5s"},
      {"socket-timeout", "2m"},
      {"limit-post", "10M"},
      {"post-buffering", "64k"},
      {"body-timeout", "30s"},
      {"websocket-max-size", "2048"},
      {"websockets-max-size", "512"},
      {"websocket-ping-freq", "10"},
      {"websockets-ping-freq", "20"},
      {"websocket-pong-tolerance", "2"},
      {"websockets-pong-tolerance", "5"},
      {"websocket-send-buffer", "64"},
      {"websocket-deflate", "true"},
      {"disable-logging", "true"},
      {"loop", "ev"},
      {"async", "100"},
      {"threads", "4"},
      {"fibers", "true"},
      {"suspend", "fibers"},
      {"fiber-stack-size", "128k"},
      {"chdir", "/tmp"},
      {"env", "SPINDLE_TEST=1"},
      {"ini", ""},  // filled in below: needs a real file
      {"strict", "false"},
      {"http", "127.0.0.1:0"},
      {"http11-socket", "127.0.0.1:0"},
      {"reload-mercy", "10"},
      {"no-server-header", "true"},
      {"chmod-socket", "660"},
      {"chmod", "666"},
      {"chown-socket", "www-data:www-data"},
      {"umask", "022"},
      {"abstract-socket", "true"},
      {"reuse-port", "true"},
      {"vacuum", "true"},
      {"uid", "www-data"},
      {"gid", "33"},
      {"pidfile", "/tmp/spindle.pid"},
      {"pidfile2", "/tmp/spindle.pid"},
      {"safe-pidfile", "/tmp/spindle.pid"},
      {"safe-pidfile2", "/tmp/spindle.pid"},
      {"daemonize", "/tmp/spindle.log"},
      {"daemonize2", "/tmp/spindle.log"},
      {"logto", "/tmp/spindle.log"},
      {"logto2", "/tmp/spindle.log"},
      {"logfile-chmod", "640"},
      {"attach-daemon", "celery -A proj worker"},
      {"touch-reload", "/tmp/spindle.touch"},
      {"reload-on-rss", "512"},
      {"evil-reload-on-rss", "1024"},
      {"max-worker-lifetime", "3600"},
      {"max-worker-lifetime-delta", "30"},
      {"max-requests-delta", "100"},
      {"auto-procname", "true"},
      {"procname", "web"},
      {"procname-master", "web master"},
      {"procname-prefix", "site-"},
      {"procname-prefix-spaced", "site"},
      {"procname-append", " (prod)"},
      {"print", "hello"},
      {"set", "k=v"},
      {"set-placeholder", "k=v"},
      {"set-ph", "k=v"},
      {"include", "/dev/null"},
      {"config", "/dev/null"},
      {"iprint", "hello"},
      {"stats", "127.0.0.1:1717"},
      {"stats-server", "/tmp/spindle-stats.sock"},
      {"stats-http", "true"},
      {"stats-minified", "true"},
      {"metrics", ":9100"},
      {"log-format", "%(addr) %(uri) %(status)"},
      {"logformat", "%(method) %(var.HTTP_HOST)"},
      {"log-4xx", "true"},
      {"log-5xx", "true"},
      {"log-slow", "500"},
      {"log-x-forwarded-for", "true"},
      {"log-format-strftime", "true"},
      {"log-master", "true"},
      {"threaded-logger", "true"},
      {"log-master-bufsize", "65536"},
      {"touch-logreopen", "/tmp/spindle-touch-logreopen"},
      {"logformat-strftime", "true"},
      {"log-date", "true"},  // a FORMAT would date this binary's later lines
      {"logdate", "yes"},
      {"logger", "stdio"},  // file:PATH would take this binary's log
      {"req-logger", "stdio"},
      {"logger-req", "stdio"},
  };
  // Rows spindle does not implement take anything.
  if (row.fate != spindle::core::Fate::kImplemented) return row.takes_value ? "1" : "true";
  if (row.name.rfind("hook-", 0) == 0) return "exec:true";
  if (row.name.rfind("exec-", 0) == 0) return "true";
  // if/for blocks (read by the configuration reader) take any argument.
  for (const char* prefix : {"if", "for", "end", "else"})
    if (row.name.rfind(prefix, 0) == 0) return row.takes_value ? "/tmp" : "true";
  auto it = kSamples.find(row.name);
  if (it == kSamples.end()) return std::nullopt;
  if (row.name == "ini") return dir.write("included.ini", "[spindle]\n");
  return it->second;
}

// --- the whole table ---------------------------------------------------------

void test_walk_table_cli(void**) {
  TempDir dir;
  Core probe;
  assert_true(probe.table.rows().size() > 20);
  for (const OptionDef& row : probe.table.rows()) {
    std::optional<std::string> value = sample_value(row, dir);
    if (!value) {
      print_error("row --%s has no sample value in test_options.cc: add one\n", row.name.c_str());
      fail();
    }
    std::vector<std::vector<std::string>> forms;
    if (row.optional_value) {
      // As with getopt: the value only with '=', never the next word.
      forms.push_back({"--" + row.name});
      forms.push_back({"--" + row.name + "=" + *value});
    } else if (row.takes_value) {
      forms.push_back({"--" + row.name, *value});
      forms.push_back({"--" + row.name + "=" + *value});
      if (row.short_name) forms.push_back({std::string("-") + row.short_name, *value});
      if (row.short_name) forms.push_back({std::string("-") + row.short_name + *value});
    } else {
      forms.push_back({"--" + row.name});
      forms.push_back({"--" + row.name + "=" + *value});
      if (row.short_name) forms.push_back({std::string("-") + row.short_name});
    }
    for (const std::vector<std::string>& args : forms) {
      Core c;
      std::string err;
      expect_ok(parse(c.table, args, &err), err, join(args));
    }
    assert_true(row.help.size() > 0);
  }
}

void test_walk_table_ini(void**) {
  TempDir dir;
  Core probe;
  for (const char* section : {"spindle", "uwsgi"}) {
    for (const OptionDef& row : probe.table.rows()) {
      std::optional<std::string> value = sample_value(row, dir);
      if (!value) {
        print_error("row --%s has no sample value in test_options.cc: add one\n",
                    row.name.c_str());
        fail();
      }
      std::string path = dir.write(
          "walk.ini", std::string("[") + section + "]\n" + row.name + " = " + *value + "\n");
      Core c;
      std::string err;
      expect_ok(c.table.parse_ini(path, &err), err, std::string(section) + " " + row.name);
      // A bare key is how ini files spell a flag.
      if (!row.takes_value) {
        path = dir.write("walk.ini", std::string("[") + section + "]\n" + row.name + " =\n");
        Core d;
        expect_ok(d.table.parse_ini(path, &err), err, "bare " + row.name);
      }
    }
  }
}

// Samples set what they say: a row bound to the wrong field would still
// parse, so spot-check that each core field moves.
void test_core_rows_reach_config(void**) {
  Core c;
  std::string err;
  int rc = parse(c.table,
                 {"--http-socket", "a:1", "--socket", "b:2", "--uwsgi-socket", "c:3", "-l", "64",
                  "-p", "3", "-R", "7", "-t", "1.5", "--http-timeout", "9", "--socket-timeout",
                  "250ms", "--limit-post", "1k", "-L", "--loop", "tornado", "--async", "50",
                  "--fiber-stack-size", "1M", "--worker-reload-mercy", "2m", "--chdir", "/srv",
                  "--env", "A=b=c", "-b", "16k"},
                 &err);
  expect_ok(rc, err, "all core rows");
  assert_int_equal(c.cfg.http_sockets.size(), 1);
  assert_string_equal(c.cfg.http_sockets[0].c_str(), "a:1");
  assert_int_equal(c.cfg.uwsgi_sockets.size(), 2);
  assert_string_equal(c.cfg.uwsgi_sockets[1].c_str(), "c:3");
  assert_int_equal(c.cfg.listen, 64);
  assert_int_equal(c.cfg.processes, 3);
  assert_int_equal(c.cfg.max_requests, 7);
  assert_true(c.cfg.harakiri == 1.5);
  assert_true(c.cfg.http_timeout == 9);
  assert_true(c.cfg.socket_timeout == 0.25);
  assert_int_equal(c.cfg.limit_post, 1024);
  assert_true(c.cfg.disable_logging);
  assert_string_equal(c.cfg.loop.c_str(), "tornado");
  assert_int_equal(c.cfg.async, 50);
  assert_int_equal(c.cfg.fiber_stack_size, 1 << 20);
  assert_true(c.cfg.reload_mercy == 120);
  assert_string_equal(c.cfg.chdir.c_str(), "/srv");
  assert_int_equal(c.cfg.env.size(), 1);
  assert_string_equal(c.cfg.env[0].c_str(), "A=b=c");
  assert_int_equal(c.cfg.buffer_size, 16384);

  Core w;
  expect_ok(parse(w.table, {"--workers", "5"}, &err), err, "--workers");
  assert_int_equal(w.cfg.processes, 5);
}

// --- errors ------------------------------------------------------------------

void test_unknown_option(void**) {
  Core c;
  std::string err;
  int rc = parse(c.table, {"--frobnicate"}, &err);
  assert_int_equal(rc, 2);
  assert_string_equal(err.c_str(), "unknown option --frobnicate");
  expect_error(parse(c.table, {"--frobnicate=1"}, &err), err, "--frobnicate", "with =");
  expect_error(parse(c.table, {"-Z"}, &err), err, "unknown option -Z", "short");

  // In a file, a key uWSGI does not know either is a placeholder for %(key):
  // no error, unless --strict.
  TempDir dir;
  std::string path = dir.write("app.ini", "[spindle]\nprocesses = 2\nfrobnicate = yes\n");
  Core d;
  expect_ok(d.table.parse_ini(path, &err), err, "placeholder key");
  assert_int_equal(d.cfg.processes, 2);
  assert_true(d.table.fate_notes().empty());
  std::string strict = dir.write("strict.ini", "[uwsgi]\nstrict = true\nfrobnicate = yes\n");
  Core e;
  expect_error(e.table.parse_ini(strict, &err), err,
               strict + ":3: unknown option 'frobnicate' (--strict)", "strict in the file");
  // Reached through --ini on the command line, the message is the same.
  Core f;
  expect_error(parse(f.table, {"--ini", path, "--strict"}, &err), err,
               path + ":3: unknown option 'frobnicate' (--strict)", "--strict on the command line");
}

void test_bad_values(void**) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"--processes", "abc"}, "--processes: expected a whole number from 1 to 1024, got 'abc'"},
      {{"--processes", "0"}, "--processes: expected a whole number from 1 to 1024, got '0'"},
      {{"-p", "1025"}, "--processes: expected a whole number from 1 to 1024"},
      {{"-p", "-1"}, "--processes: expected a whole number from 1 to 1024, got '-1'"},
      {{"--processes= 4"}, "--processes: expected a whole number"},
      {{"--async", "1000001"}, "--async: expected a whole number from 1 to 1000000"},
      {{"--listen", "x"}, "--listen: expected a whole number"},
      {{"--max-requests", "1.5"}, "--max-requests: expected a whole number from 0"},
      {{"--buffer-size", "10x"}, "--buffer-size: expected a size"},
      {{"--buffer-size", "12"}, "--buffer-size: expected a size from 1k"},
      {{"--fiber-stack-size", "2G"}, "--fiber-stack-size: expected a size from 16k to 1G"},
      {{"--limit-post", "-5"}, "--limit-post: expected a size"},
      {{"--harakiri", "-1"}, "--harakiri: expected seconds"},
      {{"--http-timeout", "soon"}, "--http-timeout: expected seconds"},
      {{"--env", "NOEQUALS"}, "--env: expected NAME=VALUE, got 'NOEQUALS'"},
      {{"--env", "=x"}, "--env: expected NAME=VALUE"},
      {{"--http-socket"}, "--http-socket: missing value"},
      {{"--http-socket", "127.0.0.1:99999"}, "port from 1 to 65535"},
      {{"--socket", ":65536"}, "port from 1 to 65535"},
      {{"--chmod-socket=9"}, "--chmod-socket: expected an octal mode"},
      {{"--http-socket", "--master"}, "--http-socket: missing value"},
      {{"-p"}, "--processes: missing value"},
      {{"--master=maybe"}, "--master takes no value"},
      {{"-Lx"}, "--disable-logging (-L) takes no value"},
      {{"--ini"}, "--ini: missing value"},
      {{"--help=1"}, "--help takes no value"},
      {{"app.py"}, "'app.py'"},
      {{"-"}, "'-'"},
      {{"--"}, "'--'"},
  };
  for (const Case& k : cases) {
    Core c;
    std::string err;
    expect_error(parse(c.table, k.args, &err), err, k.expected, join(k.args));
  }
  // The value is not applied when it is refused.
  Core c;
  std::string err;
  parse(c.table, {"-p", "3", "-p", "9999"}, &err);
  assert_int_equal(c.cfg.processes, 3);

  TempDir dir;
  std::string path = dir.write("bad.ini", "[uwsgi]\n# comment\nasync = lots\n");
  Core d;
  assert_int_equal(d.table.parse_ini(path, &err), 2);
  assert_string_equal(
      err.c_str(),
      (path + ":3: --async: expected a whole number from 1 to 1000000, got 'lots'").c_str());
  path = dir.write("bad.ini", "[uwsgi]\nmaster = sometimes\n");
  expect_error(d.table.parse_ini(path, &err), err, path + ":2: --master takes no value", "ini");
  path = dir.write("bad.ini", "[uwsgi]\nchdir = /a\nsocket =\n");
  expect_error(d.table.parse_ini(path, &err), err, path + ":3: --socket: ", "empty list value");
}

// --- syntax --------------------------------------------------------------------

void test_flags(void**) {
  std::string err;
  {
    Core c;
    assert_false(c.cfg.disable_logging);
    expect_ok(parse(c.table, {"--disable-logging"}, &err), err, "flag");
    assert_true(c.cfg.disable_logging);
    expect_ok(parse(c.table, {"--disable-logging=false"}, &err), err, "=false");
    assert_false(c.cfg.disable_logging);
    expect_ok(parse(c.table, {"--disable-logging=YES"}, &err), err, "=YES");
    assert_true(c.cfg.disable_logging);
    expect_ok(parse(c.table, {"--disable-logging=0"}, &err), err, "=0");
    assert_false(c.cfg.disable_logging);
  }
  {
    // A flag does not take the next word as its value.
    Core c;
    expect_error(parse(c.table, {"--disable-logging", "true"}, &err), err, "'true'", "next word");
  }
  TempDir dir;
  const std::vector<std::pair<std::string, bool>> spellings = {
      {"true", true}, {"FALSE", false}, {"1", true},  {"0", false},   {"yes", true},
      {"No", false},  {"on", true},     {"OFF", false}, {"", true},
  };
  for (const auto& [word, expected] : spellings) {
    Core c;
    c.cfg.disable_logging = !expected;
    std::string path = dir.write("f.ini", "[spindle]\ndisable_logging = " + word + "\n");
    expect_ok(c.table.parse_ini(path, &err), err, "ini flag '" + word + "'");
    if (c.cfg.disable_logging != expected) {
      print_error("ini flag '%s' gave %d\n", word.c_str(), c.cfg.disable_logging);
      fail();
    }
  }
  {
    Core c;
    expect_ok(parse(c.table, {"--fibers"}, &err), err, "--fibers");
    assert_string_equal(c.cfg.suspend.c_str(), "fibers");
    expect_ok(parse(c.table, {"--fibers=off"}, &err), err, "--fibers=off");
    assert_string_equal(c.cfg.suspend.c_str(), "");
    // Turning fibers off does not undo another engine's choice.
    expect_ok(parse(c.table, {"--suspend", "greenlet", "--fibers=no"}, &err), err, "other");
    assert_string_equal(c.cfg.suspend.c_str(), "greenlet");
  }
  {
    Core c;
    expect_ok(parse(c.table, {"--master", "-M", "--master=true"}, &err), err, "master");
    assert_true(c.cfg.master);
  }
}

void test_short_options(void**) {
  Core c;
  std::string err;
  expect_ok(parse(c.table, {"-p", "4", "-b64k", "-L", "-t", "250ms", "-R100", "-l", "10"}, &err),
            err, "shorts");
  assert_int_equal(c.cfg.processes, 4);
  assert_int_equal(c.cfg.buffer_size, 65536);
  assert_true(c.cfg.disable_logging);
  assert_true(c.cfg.harakiri == 0.25);
  assert_int_equal(c.cfg.max_requests, 100);
  assert_int_equal(c.cfg.listen, 10);
  expect_ok(parse(c.table, {"-p8"}, &err), err, "-p8");
  assert_int_equal(c.cfg.processes, 8);
  assert_ptr_equal(c.table.find_short('p'), c.table.find("processes"));
  assert_null(c.table.find_short('Z'));
  assert_null(c.table.find_short(0));
}

void test_underscore_is_dash(void**) {
  Core c;
  std::string err;
  expect_ok(parse(c.table, {"--buffer_size", "16k", "--max_requests=5", "--http_socket", "x:1"},
                  &err),
            err, "underscores");
  assert_int_equal(c.cfg.buffer_size, 16384);
  assert_int_equal(c.cfg.max_requests, 5);
  assert_int_equal(c.cfg.http_sockets.size(), 1);
  assert_ptr_equal(c.table.find("fiber_stack_size"), c.table.find("fiber-stack-size"));
  assert_non_null(c.table.find("fiber_stack_size"));
  assert_null(c.table.find("fiber stack size"));

  TempDir dir;
  std::string path = dir.write("u.ini", "[spindle]\nworker_reload_mercy = 3\nlimit-post = 2k\n");
  expect_ok(c.table.parse_ini(path, &err), err, "ini underscores");
  assert_true(c.cfg.reload_mercy == 3);
  assert_int_equal(c.cfg.limit_post, 2048);
}

void test_last_wins_and_repeatable(void**) {
  Core c;
  std::string err;
  expect_ok(parse(c.table,
                  {"--processes", "2", "--http-socket", "a:1", "--processes", "3", "--http-socket",
                   "b:2", "--socket", "c:3", "--uwsgi-socket", "d:4", "--env", "A=1", "--env",
                   "B=2", "--loop", "x", "--loop", "ev"},
                  &err),
            err, "twice");
  assert_int_equal(c.cfg.processes, 3);
  assert_int_equal(c.cfg.http_sockets.size(), 2);
  assert_string_equal(c.cfg.http_sockets[0].c_str(), "a:1");
  assert_string_equal(c.cfg.http_sockets[1].c_str(), "b:2");
  assert_int_equal(c.cfg.uwsgi_sockets.size(), 2);
  assert_int_equal(c.cfg.env.size(), 2);
  assert_string_equal(c.cfg.loop.c_str(), "ev");
  assert_true(c.table.find("http-socket")->repeatable);
  assert_true(c.table.find("env")->repeatable);
  assert_false(c.table.find("processes")->repeatable);
}

// --- ini files -------------------------------------------------------------------

void test_ini_in_argv(void**) {
  TempDir dir;
  std::string a = dir.write("a.ini", "[spindle]\nprocesses = 3\nhttp-socket = a:1\n");
  std::string b = dir.write("b.ini", "[uwsgi]\nasync = 9\n");
  std::string err;
  {
    // Read at its place on the command line: later options override it,
    // earlier ones are overridden by it.
    Core c;
    expect_ok(parse(c.table, {"--processes", "2", "--ini", a, "--async", "5"}, &err), err, "1");
    assert_int_equal(c.cfg.processes, 3);
    assert_int_equal(c.cfg.async, 5);
    assert_int_equal(c.cfg.ini_files.size(), 1);
    assert_string_equal(c.cfg.ini_files[0].c_str(), a.c_str());
  }
  {
    Core c;
    expect_ok(parse(c.table, {"--ini=" + a, "--processes", "7", "--ini", b, "--http-socket", "z:2"},
                    &err),
              err, "2");
    assert_int_equal(c.cfg.processes, 7);
    assert_int_equal(c.cfg.async, 9);
    assert_int_equal(c.cfg.http_sockets.size(), 2);
    assert_int_equal(c.cfg.ini_files.size(), 2);
  }
  {
    Core c;
    std::string missing = dir.path() + "/nope.ini";
    expect_error(parse(c.table, {"--ini", missing}, &err), err, "'" + missing + "'", "missing");
    expect_error(c.table.parse_ini(missing, &err), err, "'" + missing + "'", "parse_ini missing");
    expect_error(c.table.parse_ini(dir.path(), &err), err, dir.path(), "a directory");
  }
}

void test_ini_sections_and_syntax(void**) {
  TempDir dir;
  std::string err;
  {
    Core c;
    std::string path = dir.write("s.ini",
                                 "# top comment\n"
                                 "processes = 50\n"  // before any section: not ours
                                 "[app:main]\n"
                                 "use = egg:myapp\n"
                                 "processes = 99\n"
                                 "\n"
                                 "[uwsgi]\n"
                                 "; a comment\n"
                                 "   processes   =   6   \n"
                                 "\t# indented comment\n"
                                 "[loggers]\n"
                                 "keys = root\n"
                                 "[ spindle ]\n"
                                 "async=12\n"
                                 "chdir = /srv/app dir\n"
                                 "env = X = y\n");
    expect_ok(c.table.parse_ini(path, &err), err, "sections");
    assert_int_equal(c.cfg.processes, 6);
    assert_int_equal(c.cfg.async, 12);
    assert_string_equal(c.cfg.chdir.c_str(), "/srv/app dir");
    assert_string_equal(c.cfg.env[0].c_str(), "X = y");
  }
  {
    // A line without '=' is a key set to true (uWSGI's bare flags); one
    // that is no option is a placeholder like any other unknown key.
    Core c;
    std::string path = dir.write("n.ini", "[spindle]\nprocesses = 2\njust some words\n"
                                          "disable-logging\n");
    expect_ok(c.table.parse_ini(path, &err), err, "bare keys");
    assert_true(c.cfg.disable_logging);
    path = dir.write("n.ini", "[uwsgi]\n= value\n");
    expect_error(c.table.parse_ini(path, &err), err, path + ":2: ", "empty key");
  }
  {
    Core c;
    std::string path = dir.write("empty.ini", "");
    expect_ok(c.table.parse_ini(path, &err), err, "empty file");
    path = dir.write("crlf.ini", "[spindle]\r\nprocesses = 4\r\n");
    expect_ok(c.table.parse_ini(path, &err), err, "crlf");
    assert_int_equal(c.cfg.processes, 4);
  }
}

void test_ini_include(void**) {
  TempDir dir;
  std::string err;
  {
    // Relative to the including file's folder, not the working directory.
    dir.write("conf/inner.ini", "[uwsgi]\nasync = 33\n");
    std::string outer = dir.write("conf/outer.ini", "[spindle]\nprocesses = 2\nini = inner.ini\n");
    Core c;
    expect_ok(c.table.parse_ini(outer, &err), err, "include");
    assert_int_equal(c.cfg.async, 33);
    assert_int_equal(c.cfg.processes, 2);
    assert_int_equal(c.cfg.ini_files.size(), 1);
    assert_string_equal(c.cfg.ini_files[0].c_str(), (dir.path() + "/conf/inner.ini").c_str());
  }
  {
    // An include outside our sections is not ours to follow.
    std::string path = dir.write("skip.ini", "[other]\nini = /nonexistent.ini\n");
    Core c;
    expect_ok(c.table.parse_ini(path, &err), err, "include in other section");
  }
  {
    std::string self = dir.write("loop.ini", "[spindle]\nini = loop.ini\n");
    Core c;
    expect_error(c.table.parse_ini(self, &err), err, "nested more than 10 deep", "self include");
    assert_true(err.rfind(self + ":2: ", 0) == 0);
    Core d;
    expect_error(parse(d.table, {"--ini", self}, &err), err, "nested more than 10 deep",
                 "via argv");
  }
  {
    dir.write("ping.ini", "[spindle]\nini = pong.ini\n");
    std::string ping = dir.path() + "/ping.ini";
    dir.write("pong.ini", "[uwsgi]\nini = ping.ini\n");
    Core c;
    expect_error(c.table.parse_ini(ping, &err), err, "nested more than 10 deep", "mutual include");
  }
  {
    std::string path = dir.write("broken.ini", "[spindle]\nini = missing.ini\n");
    Core c;
    expect_error(c.table.parse_ini(path, &err), err, path + ":2: ", "missing include");
    expect_error(2, err, "missing.ini", "missing include names the file");
  }
  {
    // Nine levels deep (ten files) is allowed.
    for (int i = 0; i < 9; ++i) {
      dir.write("d" + std::to_string(i) + ".ini",
                "[spindle]\nini = d" + std::to_string(i + 1) + ".ini\n");
    }
    dir.write("d9.ini", "[spindle]\nprocesses = 9\n");
    Core c;
    expect_ok(c.table.parse_ini(dir.path() + "/d0.ini", &err), err, "ten deep");
    assert_int_equal(c.cfg.processes, 9);
    // One more level is refused, whether or not it is a loop.
    dir.write("e.ini", "[spindle]\nini = d0.ini\n");
    Core d;
    expect_error(d.table.parse_ini(dir.path() + "/e.ini", &err), err, "nested more than 10 deep",
                 "eleven deep");
  }
}

// --- values ------------------------------------------------------------------

void test_size_parsing(void**) {
  const std::vector<std::pair<std::string, std::uint64_t>> good = {
      {"0", 0},
      {"4096", 4096},
      {"64k", 64 * 1024},
      {"64K", 64 * 1024},
      {"10M", 10ull << 20},
      {"10m", 10ull << 20},
      {"1G", 1ull << 30},
      {"3g", 3ull << 30},
      {"18446744073709551615", 18446744073709551615ull},
  };
  for (const auto& [text, expected] : good) {
    std::uint64_t v = 1;
    std::string reason = OptionTable::size(v)(text);
    if (!reason.empty() || v != expected) {
      print_error("size '%s': reason '%s', value %llu\n", text.c_str(), reason.c_str(),
                  static_cast<unsigned long long>(v));
      fail();
    }
  }
  for (const char* bad : {"", "k", "1.5M", "-1", "+1", "10T", "10kb", " 10", "10 ", "0x10",
                          "99999999999999999999", "17179869184G"}) {
    std::uint64_t v = 7;
    std::string reason = OptionTable::size(v)(bad);
    bool named = reason.find(std::string("'") + bad + "'") != std::string::npos;
    if (reason.empty() || v != 7 || !named) {
      print_error("size '%s' accepted or unnamed: '%s'\n", bad, reason.c_str());
      fail();
    }
  }
}

void test_seconds_parsing(void**) {
  const std::vector<std::pair<std::string, double>> good = {
      {"30", 30},    {"0", 0},     {"0.5", 0.5},    {"250ms", 0.25}, {"10s", 10},
      {"2m", 120},   {"1.5m", 90}, {"0ms", 0},      {".5", 0.5},     {"3.", 3},
  };
  for (const auto& [text, expected] : good) {
    double v = -1;
    std::string reason = OptionTable::seconds(v)(text);
    if (!reason.empty() || v != expected) {
      print_error("seconds '%s': reason '%s', value %g\n", text.c_str(), reason.c_str(), v);
      fail();
    }
  }
  for (const char* bad : {"", "-1", "-0.5", "abc", "1h", "inf", "nan", "1e3", "1.2.3", ".", "ms",
                          "s", "m", "10 s", "5sec", "1,5"}) {
    double v = 7;
    std::string reason = OptionTable::seconds(v)(bad);
    if (reason.empty() || v != 7) {
      print_error("seconds '%s' accepted\n", bad);
      fail();
    }
  }
}

void test_integer_setters(void**) {
  int i = 5;
  assert_string_equal(OptionTable::integer(i, 1, 10)("1").c_str(), "");
  assert_int_equal(i, 1);
  assert_string_equal(OptionTable::integer(i, 1, 10)("10").c_str(), "");
  assert_int_equal(i, 10);
  for (const char* bad : {"0", "11", "", "+3", " 3", "3 ", "3x", "99999999999999999999"}) {
    std::string reason = OptionTable::integer(i, 1, 10)(bad);
    assert_string_equal(reason.c_str(),
                        (std::string("expected a whole number from 1 to 10, got '") + bad + "'")
                            .c_str());
    assert_int_equal(i, 10);
  }
  long l = 0;
  assert_string_equal(OptionTable::integer(l, -5, 5000000000L)("5000000000").c_str(), "");
  assert_true(l == 5000000000L);
  assert_string_equal(OptionTable::integer(l, -5, 5000000000L)("-5").c_str(), "");
  assert_true(l == -5);
  assert_true(OptionTable::integer(l, -5, 5000000000L)("5000000001").size() > 0);
  // An int target never sees a long that would not fit.
  assert_true(OptionTable::integer(i, 1, 10)("4294967297").size() > 0);
}

void test_text_list_ignored(void**) {
  std::string s = "x";
  assert_string_equal(OptionTable::text(s)("").c_str(), "");
  assert_string_equal(s.c_str(), "");
  std::vector<std::string> v;
  assert_string_equal(OptionTable::list(v)("a").c_str(), "");
  assert_string_equal(OptionTable::list(v)("b").c_str(), "");
  assert_int_equal(v.size(), 2);
  assert_true(OptionTable::list(v)("").size() > 0);
  assert_int_equal(v.size(), 2);
  assert_string_equal(OptionTable::ignored()("anything at all").c_str(), "");
  bool b = false;
  assert_string_equal(OptionTable::flag(b)("on").c_str(), "");
  assert_true(b);
  assert_true(OptionTable::flag(b)("perhaps").find("'perhaps'") != std::string::npos);
  assert_true(b);
}

void test_plugin_rows(void**) {
  // A plugin adds rows to the same table; they work on the command line and
  // in ini files like core rows, and custom setter errors name the option.
  Core c(false);
  std::string module;
  c.table.add({"module", 'w', true, "MOD", "load a WSGI module",
               [&module](std::string_view v) -> std::string {
                 if (v.find(' ') != std::string_view::npos) return "no spaces allowed";
                 module.assign(v);
                 return {};
               }});
  std::string err;
  expect_ok(parse(c.table, {"-w", "app:application"}, &err), err, "plugin short");
  assert_string_equal(module.c_str(), "app:application");
  expect_error(parse(c.table, {"--module", "a b"}, &err), err, "--module: no spaces allowed",
               "custom setter");
  assert_true(c.table.help("spindle").find("  -w, --module MOD") != std::string::npos);
}


// --- uWSGI's ini syntax and option policy ---------------------------------------

// Every option of uWSGI 2.0's core and Python plugin is a row with a fate, and
// every row spindle does not implement says why (a rule of fates.cc, not the
// catch-all).
void test_every_uwsgi_name_has_a_fate(void**) {
  using spindle::core::Fate;
  Core c(false);
  for (spindle::core::Plugin* p : spindle::core::plugins()) {
    p->add_options(c.table);
    p->add_engine_options(c.table, c.cfg);
  }
  spindle::core::add_uwsgi_rows(c.table);
  int implemented = 0, no_effect = 0, unsupported = 0, missing = 0;
  for (const spindle::core::UwsgiName& n : spindle::core::uwsgi_names()) {
    if (spindle::core::is_builtin_name(n.name)) continue;
    const OptionDef* row = c.table.find(n.name);
    if (row == nullptr) {
      print_error("uWSGI option --%s has no row\n", n.name);
      fail();
    }
    if (row->fate == Fate::kImplemented) {
      ++implemented;
      continue;
    }
    row->fate == Fate::kNoEffect ? ++no_effect : ++unsupported;
    if (spindle::core::fate_of(n.name) == nullptr || row->help.empty()) {
      print_error("uWSGI option --%s has no fate rule in core/fates.cc\n", n.name);
      ++missing;
    }
    // A flag stays a flag and a value option takes a value, as in uWSGI.
    assert_int_equal(row->takes_value, n.arg != 'F');
  }
  assert_int_equal(missing, 0);
  assert_true(spindle::core::uwsgi_names().size() > 900);
  assert_true(implemented > 30 && no_effect > 20 && unsupported > 300);
}

// The uWSGI options a configuration used that do nothing here are noted once
// each (for the WARN lines); --strict refuses the unsupported ones, and every
// refusal of a file is reported in one run.
void test_fate_notes_and_strict(void**) {
  TempDir dir;
  std::string err;
  std::string path = dir.write("f.ini", "[uwsgi]\nthunder-lock\ncheaper = 2\nprocesses = 2\n"
                                        "cheaper = 3\nenable-threads = false\n");
  Core c;
  expect_ok(c.table.parse_ini(path, &err), err, "fates");
  const auto& notes = c.table.fate_notes();
  assert_int_equal(notes.size(), 2);
  assert_string_equal(notes[0].name.c_str(), "thunder-lock");
  assert_true(notes[0].fate == spindle::core::Fate::kNoEffect);
  assert_string_equal(notes[0].where.c_str(), (path + ":2").c_str());
  assert_string_equal(notes[1].name.c_str(), "cheaper");
  assert_true(notes[1].fate == spindle::core::Fate::kUnsupported);

  path = dir.write("s.ini", "[uwsgi]\nstrict\nthunder-lock\ncheaper = 2\nprocesses = x\n"
                            "placeholder = 1\nasync = y\n");
  Core d;
  assert_int_equal(d.table.parse_ini(path, &err), 2);
  std::vector<std::string> lines;
  std::stringstream ss(err);
  for (std::string line; std::getline(ss, line);) lines.push_back(line);
  assert_int_equal(lines.size(), 4);
  assert_true(lines[0].rfind(path + ":4: --cheaper is not supported", 0) == 0);
  assert_true(lines[1].rfind(path + ":5: --processes: expected a whole number", 0) == 0);
  assert_true(lines[2].rfind(path + ":6: unknown option 'placeholder'", 0) == 0);
  assert_true(lines[3].rfind(path + ":7: --async: ", 0) == 0);
}

void test_placeholders_and_magic(void**) {
  TempDir dir;
  std::string err;
  setenv("SPINDLE_T_VAR", "/from/env", 1);
  unsetenv("SPINDLE_T_UNSET");
  dir.write("conf/secret.txt", "s3cret\n");
  std::string path = dir.write(
      "conf/site.ini",
      "[uwsgi]\n"
      "base = /srv\n"
      "project = shop\n"
      "chdir = %(base)/%(project)\n"            // placeholders, keys that are no option
      "workers-per-core = 3\n"
      "cores = 2\n"
      "processes = %(cores * workers-per-core)\n"  // arithmetic
      "async = %(cores + 8) # ten\n"            // and a trailing comment
      "env = DIR=%d\n"                          // magic variables
      "env = NAME=%n EXT=%e FILE=%s CDIR=%c PCT=100%%\n"
      "env = HOME=$(SPINDLE_T_VAR)\n"
      "env = DEF=$(SPINDLE_T_UNSET:-fallback)\n"
      "env = KEEP=$(SPINDLE_T_UNSET)\n"          // unresolved: stays as written
      "env = SECRET=@(%dsecret.txt)\n"
      "env = FMT=%(status) %(method)\n"         // not keys: left for log-format
      "listen = 10\n"
      "listen = 20\n");                         // repeated: the last wins
  Core c;
  expect_ok(c.table.parse_ini(path, &err), err, "placeholders");
  assert_string_equal(c.cfg.chdir.c_str(), "/srv/shop");
  assert_int_equal(c.cfg.processes, 6);
  assert_int_equal(c.cfg.async, 10);
  assert_int_equal(c.cfg.listen, 20);
  std::string conf = dir.path() + "/conf/";
  char* real = realpath(conf.c_str(), nullptr);
  std::string real_conf = std::string(real) + "/";
  free(real);
  assert_int_equal(c.cfg.env.size(), 7);
  assert_string_equal(c.cfg.env[0].c_str(), ("DIR=" + real_conf).c_str());
  assert_string_equal(c.cfg.env[1].c_str(),
                      "NAME=site EXT=ini FILE=site.ini CDIR=conf PCT=100%");
  assert_string_equal(c.cfg.env[2].c_str(), "HOME=/from/env");
  assert_string_equal(c.cfg.env[3].c_str(), "DEF=fallback");
  assert_string_equal(c.cfg.env[4].c_str(), "KEEP=$(SPINDLE_T_UNSET)");
  assert_string_equal(c.cfg.env[5].c_str(), "SECRET=s3cret");
  assert_string_equal(c.cfg.env[6].c_str(), "FMT=%(status) %(method)");
}

void test_sections_and_includes(void**) {
  TempDir dir;
  std::string err;
  std::string path = dir.write("multi.ini",
                               "[uwsgi]\nprocesses = 2\nini = :extra\n"
                               "[extra]\nasync = 7\nenv = SECTION=%x\n"
                               "[prod]\nprocesses = 8\n");
  {
    Core c;
    expect_ok(c.table.parse_ini(path, &err), err, "ini = :section");
    assert_int_equal(c.cfg.processes, 2);
    assert_int_equal(c.cfg.async, 7);
    assert_string_equal(c.cfg.env[0].c_str(), "SECTION=extra");
  }
  {
    Core c;
    expect_ok(parse(c.table, {"--ini", path + ":prod"}, &err), err, "--ini file:section");
    assert_int_equal(c.cfg.processes, 8);
    assert_int_equal(c.cfg.async, 1);
  }
  {
    std::string outer = dir.write("outer.ini", "[uwsgi]\nini = " + path + ":prod\n");
    Core c;
    expect_ok(c.table.parse_ini(outer, &err), err, "ini = other.ini:section");
    assert_int_equal(c.cfg.processes, 8);
  }
}

void test_logic_blocks(void**) {
  TempDir dir;
  std::string err;
  setenv("SPINDLE_T_MODE", "prod", 1);
  unsetenv("SPINDLE_T_NOPE");
  std::string path = dir.write(
      "logic.ini",
      "[uwsgi]\n"
      "if-env = SPINDLE_T_MODE\nenv = MODE=%(_)\nendif\n"
      "if-env = SPINDLE_T_MODE=dev\nenv = DEV=1\nelse\nenv = NOTDEV=1\nendif\n"
      "if-not-env = SPINDLE_T_NOPE\nenv = NOPE=unset\nendif\n"
      "if-env = SPINDLE_T_NOPE\nenv = NEVER=1\nendif\n"
      "if-exists = " + dir.path() + "\nenv = EXISTS=%(_)\nendif\n"
      "if-not-exists = /no/such/path\nenv = MISSING=yes\nendif\n"
      "for = a b c\nenv = ITEM_%(_)=1\nendfor\n"
      "for-times = 2\nenv = N%(_)=1\nendfor\n"
      "if-opt = processes\nenv = NEVER2=1\nendif\n"
      "processes = 3\n"
      "if-opt = processes=3\nenv = P3=1\nendif\n");
  Core c;
  expect_ok(c.table.parse_ini(path, &err), err, "logic");
  std::string all;
  for (const std::string& e : c.cfg.env) all += e + ";";
  assert_string_equal(all.c_str(), ("MODE=prod;NOTDEV=1;NOPE=unset;EXISTS=" + dir.path() +
                                    ";MISSING=yes;ITEM_a=1;ITEM_b=1;ITEM_c=1;N1=1;N2=1;P3=1;")
                                       .c_str());
}

void test_environment_options(void**) {
  std::string err;
  std::vector<std::string> vars = {"UWSGI_PROCESSES=5", "SPINDLE_ASYNC=9", "UWSGI_RELOADS=3",
                                   "SPINDLE_LISTEN_FDS=3,4", "UWSGI_MY_PLACEHOLDER=x",
                                   "UWSGI_HARAKIRI=7", "PATH=/bin"};
  std::vector<char*> env;
  for (std::string& v : vars) env.push_back(v.data());
  env.push_back(nullptr);
  Core c;
  std::vector<const char*> argv = {"spindle", "--harakiri", "9"};
  expect_ok(c.table.parse_args(static_cast<int>(argv.size()), argv.data(), &err, env.data()), err,
            "environment");
  assert_int_equal(c.cfg.processes, 5);
  assert_int_equal(c.cfg.async, 9);
  assert_true(c.cfg.harakiri == 9);  // the command line comes after the environment

  std::vector<std::string> bad = {"UWSGI_PROCESSES=many", nullptr == nullptr ? "X=1" : ""};
  std::vector<char*> env2 = {bad[0].data(), nullptr};
  Core d;
  expect_error(d.table.parse_args(1, argv.data(), &err, env2.data()), err,
               "$UWSGI_PROCESSES: --processes: expected a whole number", "bad env value");
}

// --- help and version ------------------------------------------------------------

// Runs fn with stdout redirected to a file and returns what it printed.
template <typename Fn>
std::string capture_stdout(Fn fn) {
  std::fflush(stdout);
  char tmpl[] = "/tmp/spindle_stdout_XXXXXX";
  int fd = mkstemp(tmpl);
  assert_true(fd >= 0);
  int saved = dup(STDOUT_FILENO);
  dup2(fd, STDOUT_FILENO);
  fn();
  std::fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  std::ifstream in(tmpl);
  std::stringstream ss;
  ss << in.rdbuf();
  close(fd);
  unlink(tmpl);
  return ss.str();
}

// --help lists every row, grouped by fate (implemented, no effect, not
// supported), each group in table order, with the row's help text.
void test_help_lists_every_row(void**) {
  using spindle::core::Fate;
  Core c;
  std::string text = c.table.help("spindle");
  assert_true(text.rfind("usage: spindle [options]\n", 0) == 0);
  const std::size_t no_effect_at = text.find("\naccepted from uWSGI with no effect here");
  const std::size_t unsupported_at = text.find("\nuWSGI options spindle does not support");
  assert_true(no_effect_at != std::string::npos && unsupported_at != std::string::npos);
  assert_true(no_effect_at < unsupported_at);
  std::size_t last[3] = {0, no_effect_at, unsupported_at};
  std::size_t help_column = std::string::npos;
  for (const OptionDef& row : c.table.rows()) {
    const int group = static_cast<int>(row.fate);
    std::string left = "      --" + row.name;
    if (row.fate == Fate::kImplemented) {
      if (row.short_name) left = std::string("  -") + row.short_name + ", --" + row.name;
      std::string metavar = row.metavar.empty() ? std::string("VALUE") : row.metavar;
      if (row.takes_value) left += " " + (row.optional_value ? "[" + metavar + "]" : metavar);
    }
    std::size_t at = text.find("\n" + left + " ", last[group]);
    std::size_t end = group == 0 ? no_effect_at : group == 1 ? unsupported_at : text.size();
    if (at == std::string::npos || at > end) {
      print_error("help lacks '%s' in its group, in table order\n", left.c_str());
      fail();
    }
    last[group] = at;
    std::size_t eol = text.find('\n', at + 1);
    std::string line = text.substr(at + 1, eol - at - 1);
    assert_true(line.size() > row.help.size());
    assert_string_equal(line.substr(line.size() - row.help.size()).c_str(), row.help.c_str());
    // Short lines of the implemented options share one help column.
    if (group == 0 && left.size() < 30) {
      std::size_t col = line.size() - row.help.size();
      if (help_column == std::string::npos) help_column = col;
      assert_int_equal(col, help_column);
    }
  }
  assert_true(text.find("--help") != std::string::npos);
  assert_true(text.find("--version") != std::string::npos);
  assert_true(text.find("-p, --processes N ") != std::string::npos);
}

void test_help_and_version(void**) {
  Core c;
  std::string err;
  int rc = 0;
  std::string out = capture_stdout([&] { rc = parse(c.table, {"--version"}, &err); });
  assert_int_equal(rc, 1);
  assert_string_equal(out.c_str(), "spindle 0.1.0\n");
  out = capture_stdout([&] { rc = parse(c.table, {"-p", "2", "--help", "--frob"}, &err); });
  assert_int_equal(rc, 1);
  assert_string_equal(out.c_str(), c.table.help("spindle").c_str());
  out = capture_stdout([&] { rc = parse(c.table, {"-h"}, &err); });
  assert_int_equal(rc, 1);
  assert_true(out.rfind("usage: spindle [options]", 0) == 0);
}

void test_examples_parse(void**) {
  // The example ini files must stay valid: they are read with the core rows
  // plus the python plugin's app rows, which are stubbed here.
  for (const char* path : {"examples/hello.ini", "examples/uwsgi_compat.ini"}) {
    Core c(false);
    std::string wsgi_file;
    if (c.table.find("wsgi-file") == nullptr) {
      c.table.add({"wsgi-file", 0, true, "FILE", "stub", OptionTable::text(wsgi_file)});
    }
    std::string err;
    int rc = c.table.parse_ini(path, &err);
    if (rc != 0) {
      print_error("%s (run from the repository root): %s\n", path, err.c_str());
      fail();
    }
    assert_string_equal(wsgi_file.c_str(), "examples/hello.py");
    assert_true(c.cfg.http_sockets.size() + c.cfg.uwsgi_sockets.size() > 0);
  }
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_walk_table_cli),
      cmocka_unit_test(test_walk_table_ini),
      cmocka_unit_test(test_core_rows_reach_config),
      cmocka_unit_test(test_unknown_option),
      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_flags),
      cmocka_unit_test(test_short_options),
      cmocka_unit_test(test_underscore_is_dash),
      cmocka_unit_test(test_last_wins_and_repeatable),
      cmocka_unit_test(test_ini_in_argv),
      cmocka_unit_test(test_ini_sections_and_syntax),
      cmocka_unit_test(test_ini_include),
      cmocka_unit_test(test_size_parsing),
      cmocka_unit_test(test_seconds_parsing),
      cmocka_unit_test(test_integer_setters),
      cmocka_unit_test(test_text_list_ignored),
      cmocka_unit_test(test_plugin_rows),
      cmocka_unit_test(test_every_uwsgi_name_has_a_fate),
      cmocka_unit_test(test_fate_notes_and_strict),
      cmocka_unit_test(test_placeholders_and_magic),
      cmocka_unit_test(test_sections_and_includes),
      cmocka_unit_test(test_logic_blocks),
      cmocka_unit_test(test_environment_options),
      cmocka_unit_test(test_help_lists_every_row),
      cmocka_unit_test(test_help_and_version),
      cmocka_unit_test(test_examples_parse),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
