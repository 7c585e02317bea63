// The access line: uWSGI's --log-format variables, the default line, and
// which requests are logged. See access_log.hh.
#include "core/access_log.hh"

#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <ctime>

#include "core/log.hh"
#include "core/log_master.hh"
#include "core/options.hh"
#include "core/scheduler.hh"

namespace spindle::core {

namespace {

// What %(name) stands for. Names uWSGI fills from its own request state are
// filled from the request's variables and the response's counters here.
enum class Field {
  kText, kUri, kMethod, kUser, kAddr, kHost, kProto, kUagent, kReferer, kStatus, kRsize,
  kHsize, kSize, kCl, kMicros, kMsecs, kSecs, kTmsecs, kTmicros, kTime, kLtime, kFtime,
  kCtime, kEpoch, kPid, kWid, kCore, kVars, kWerr, kRerr, kIoerr, kHeaders, kSwitches,
  kPktsize, kModifier1, kModifier2, kRss, kVsz, kRssM, kVszM, kVar, kUnknown
};

struct Chunk {
  Field field;
  std::string text;  // literal text, or the variable's name for kVar
};

struct Named {
  const char* name;
  Field field;
};

constexpr Named kFields[] = {
    {"uri", Field::kUri},         {"method", Field::kMethod},   {"user", Field::kUser},
    {"addr", Field::kAddr},       {"host", Field::kHost},       {"proto", Field::kProto},
    {"uagent", Field::kUagent},   {"referer", Field::kReferer}, {"status", Field::kStatus},
    {"rsize", Field::kRsize},     {"hsize", Field::kHsize},     {"size", Field::kSize},
    {"cl", Field::kCl},           {"micros", Field::kMicros},   {"msecs", Field::kMsecs},
    {"secs", Field::kSecs},       {"tmsecs", Field::kTmsecs},   {"tmicros", Field::kTmicros},
    {"time", Field::kTime},       {"ltime", Field::kLtime},     {"ftime", Field::kFtime},
    {"ctime", Field::kCtime},     {"epoch", Field::kEpoch},     {"pid", Field::kPid},
    {"wid", Field::kWid},         {"core", Field::kCore},       {"vars", Field::kVars},
    {"werr", Field::kWerr},       {"ioerr", Field::kIoerr},     {"rerr", Field::kRerr},
    {"headers", Field::kHeaders}, {"switches", Field::kSwitches}, {"pktsize", Field::kPktsize},
    {"modifier1", Field::kModifier1}, {"modifier2", Field::kModifier2},
    {"rss", Field::kRss},         {"vsz", Field::kVsz},         {"rssM", Field::kRssM},
    {"vszM", Field::kVszM},
};

bool is_memory(Field f) {
  return f == Field::kRss || f == Field::kVsz || f == Field::kRssM || f == Field::kVszM;
}

// The worker's memory when the request ends, in bytes, as uWSGI reads it
// (the address space and the resident set of /proc/self).
struct Memory {
  unsigned long long rss = 0, vsz = 0;
};

Memory read_memory() {
  Memory m;
  FILE* f = fopen("/proc/self/statm", "re");
  if (!f) return m;
  unsigned long long size = 0, resident = 0;
  if (fscanf(f, "%llu %llu", &size, &resident) == 2) {
    const auto page = static_cast<unsigned long long>(sysconf(_SC_PAGESIZE));
    m.vsz = size * page;
    m.rss = resident * page;
  }
  fclose(f);
  return m;
}

struct Settings {
  bool formatted = false;  // --log-format given
  std::vector<Chunk> format;
  bool log_4xx = false;
  bool log_5xx = false;
  long slow_ms = 0;  // --log-slow (0: off)
  bool x_forwarded_for = false;
  std::string date_format;  // --log-date FORMAT
  bool format_strftime = false;  // --log-format-strftime: %(ftime) follows --log-date
  bool needs_memory = false;     // the format has %(rss), %(vsz)...
};

Settings& settings() {
  static Settings s;
  return s;
}

// uWSGI's reading of a format: "%(name)" is a variable, everything else
// (a lone '%', a "%(" never closed) is text.
std::vector<Chunk> parse_format(std::string_view f) {
  std::vector<Chunk> out;
  std::string text;
  std::size_t i = 0;
  while (i < f.size()) {
    std::size_t open = f.find("%(", i);
    std::size_t close = open == std::string_view::npos ? open : f.find(')', open + 2);
    if (close == std::string_view::npos) {
      text.append(f.substr(i));
      break;
    }
    text.append(f.substr(i, open - i));
    if (!text.empty()) out.push_back({Field::kText, std::move(text)});
    text.clear();
    std::string_view name = f.substr(open + 2, close - open - 2);
    Chunk c{Field::kUnknown, std::string(name)};
    for (const Named& n : kFields)
      if (name == n.name) c.field = n.field;
    if (c.field == Field::kUnknown && name.substr(0, 4) == "var.") {
      c.field = Field::kVar;
      c.text = std::string(name.substr(4));
    }
    out.push_back(std::move(c));
    i = close + 1;
  }
  if (!text.empty()) out.push_back({Field::kText, std::move(text)});
  return out;
}

Exchange* current_exchange() {
  Core* c = current_core_ptr();
  return c ? c->ex : nullptr;
}

std::string_view find(std::span<const Var> vars, std::string_view name) {
  for (const Var& v : vars)
    if (v.name == name) return v.value;
  return {};
}

// A value from the request goes between quotes in most log formats: its
// quotes and backslashes are escaped so that it cannot end the field early.
// (Control bytes are escaped for the whole line by core/log.cc.)
void append_escaped(std::string* out, std::string_view v) {
  for (char c : v) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
}

void append_num(std::string* out, unsigned long long n) { out->append(std::to_string(n)); }

std::string_view client_addr(const AccessRecord& r) {
  if (settings().x_forwarded_for) {
    std::string_view xff = find(r.vars, "HTTP_X_FORWARDED_FOR");
    if (!xff.empty()) return xff;
  }
  std::string_view addr = find(r.vars, "REMOTE_ADDR");
  return addr.empty() ? r.peer : addr;
}

void append_time(std::string* out, const char* fmt, double at) {
  time_t t = static_cast<time_t>(at);
  struct tm tm;
  localtime_r(&t, &tm);
  char buf[128];
  std::size_t n = strftime(buf, sizeof buf, fmt, &tm);
  out->append(buf, n);
}

// One variable's value; an empty one is written "-", as uWSGI does.
void append_field(std::string* out, const Chunk& c, const AccessRecord& r, double start,
                  const Memory& mem) {
  const std::size_t before = out->size();
  const double micros = r.seconds * 1e6;
  switch (c.field) {
    case Field::kText: out->append(c.text); return;
    case Field::kUri: append_escaped(out, find(r.vars, "REQUEST_URI")); break;
    case Field::kMethod: append_escaped(out, find(r.vars, "REQUEST_METHOD")); break;
    case Field::kUser: append_escaped(out, find(r.vars, "REMOTE_USER")); break;
    case Field::kAddr: append_escaped(out, client_addr(r)); break;
    case Field::kHost: append_escaped(out, find(r.vars, "HTTP_HOST")); break;
    case Field::kProto: append_escaped(out, find(r.vars, "SERVER_PROTOCOL")); break;
    case Field::kUagent: append_escaped(out, find(r.vars, "HTTP_USER_AGENT")); break;
    case Field::kReferer: append_escaped(out, find(r.vars, "HTTP_REFERER")); break;
    case Field::kVar: append_escaped(out, find(r.vars, c.text)); break;
    case Field::kStatus: append_num(out, static_cast<unsigned>(r.status)); break;
    case Field::kRsize: append_num(out, r.body_bytes); break;
    case Field::kHsize: append_num(out, r.head_bytes); break;
    case Field::kSize: append_num(out, r.head_bytes + r.body_bytes); break;
    case Field::kCl: {
      std::string_view cl = find(r.vars, "CONTENT_LENGTH");
      if (cl.empty()) cl = "0";
      append_escaped(out, cl);
      break;
    }
    case Field::kMicros: append_num(out, static_cast<unsigned long long>(micros)); break;
    case Field::kMsecs: append_num(out, static_cast<unsigned long long>(micros / 1000)); break;
    case Field::kSecs: {
      char buf[32];
      out->append(buf, static_cast<std::size_t>(snprintf(buf, sizeof buf, "%.6f", r.seconds)));
      break;
    }
    case Field::kTmsecs: append_num(out, static_cast<unsigned long long>(start * 1e3)); break;
    case Field::kTmicros: append_num(out, static_cast<unsigned long long>(start * 1e6)); break;
    case Field::kTime: append_num(out, static_cast<unsigned long long>(start)); break;
    case Field::kLtime: append_time(out, "%d/%b/%Y:%H:%M:%S %z", start); break;
    case Field::kFtime: {
      // As uWSGI: the --log-date format only with --log-format-strftime.
      const Settings& s = settings();
      const bool own = s.format_strftime && !s.date_format.empty();
      append_time(out, own ? s.date_format.c_str() : "%d/%b/%Y:%H:%M:%S %z", start);
      break;
    }
    case Field::kCtime: append_time(out, "%a %b %e %H:%M:%S %Y", start); break;
    case Field::kEpoch: append_num(out, static_cast<unsigned long long>(time(nullptr))); break;
    case Field::kPid: append_num(out, static_cast<unsigned long long>(getpid())); break;
    case Field::kWid: append_num(out, static_cast<unsigned>(r.worker)); break;
    case Field::kCore: append_num(out, static_cast<unsigned>(r.core)); break;
    case Field::kVars: append_num(out, r.vars.size()); break;
    case Field::kWerr: append_num(out, r.cut ? 1 : 0); break;
    case Field::kRerr: append_num(out, static_cast<unsigned>(r.read_errors)); break;
    case Field::kIoerr: append_num(out, static_cast<unsigned>(r.read_errors + (r.cut ? 1 : 0))); break;
    case Field::kHeaders: append_num(out, static_cast<unsigned>(r.headers)); break;
    case Field::kSwitches: append_num(out, r.switches); break;
    case Field::kPktsize: {
      // The request's variables as a uwsgi packet would carry them.
      unsigned long long n = 0;
      for (const Var& v : r.vars) n += 4 + v.name.size() + v.value.size();
      append_num(out, n);
      break;
    }
    case Field::kModifier1: append_num(out, 0); break;  // the only one served
    case Field::kModifier2: append_num(out, r.modifier2); break;
    case Field::kRss: append_num(out, mem.rss); break;
    case Field::kVsz: append_num(out, mem.vsz); break;
    case Field::kRssM: append_num(out, mem.rss / 1024 / 1024); break;
    case Field::kVszM: append_num(out, mem.vsz / 1024 / 1024); break;
    case Field::kUnknown:  // a logvar: what the app set, if it did
      append_escaped(out, find(r.logvars, c.text));
      break;
  }
  if (out->size() == before) out->push_back('-');
}

void quoted(std::string* out, std::string_view v) {
  out->push_back('"');
  if (v.empty()) {
    out->push_back('-');
  } else {
    append_escaped(out, v);
  }
  out->push_back('"');
}

}  // namespace

bool access_wanted(bool disabled, int status, double seconds) {
  if (!disabled) return true;
  const Settings& s = settings();
  if (s.log_4xx && status >= 400 && status <= 499) return true;
  if (s.log_5xx && status >= 500 && status <= 599) return true;
  return s.slow_ms > 0 && seconds * 1000.0 >= static_cast<double>(s.slow_ms);
}

void log_request(const AccessRecord& r) {
  thread_local std::string line;
  line.clear();
  const Settings& s = settings();
  if (s.formatted) {
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    const double start = static_cast<double>(tv.tv_sec) + tv.tv_usec * 1e-6 - r.seconds;
    const Memory mem = s.needs_memory ? read_memory() : Memory{};
    for (const Chunk& c : s.format) append_field(&line, c, r, start, mem);
    log_access_text(line, true);
    return;
  }
  std::string_view addr = client_addr(r);
  append_escaped(&line, addr.empty() ? "-" : addr);
  line.push_back(' ');
  quoted(&line, r.line);
  char buf[96];
  int n = snprintf(buf, sizeof buf, " %d %llu %.3fms ", r.status,
                   static_cast<unsigned long long>(r.body_bytes), r.seconds * 1000.0);
  line.append(buf, static_cast<std::size_t>(n));
  quoted(&line, find(r.vars, "HTTP_REFERER"));
  line.push_back(' ');
  quoted(&line, find(r.vars, "HTTP_USER_AGENT"));
  if (r.cut) line.append(" (cut off)");
  log_access_text(line, false);
}

bool set_request_logvar(std::string_view name, std::string_view value) {
  Exchange* ex = current_exchange();
  if (!ex) return false;
  // Views into the store are rebuilt after every change: it may move.
  bool found = false;
  for (std::size_t i = 0; i < ex->logvars.store.size(); i += 2) {
    if (ex->logvars.store[i] == name) {
      ex->logvars.store[i + 1].assign(value);
      found = true;
    }
  }
  if (!found) {
    ex->logvars.store.emplace_back(name);
    ex->logvars.store.emplace_back(value);
  }
  ex->logvars.view.clear();
  for (std::size_t i = 0; i < ex->logvars.store.size(); i += 2)
    ex->logvars.view.push_back({ex->logvars.store[i], ex->logvars.store[i + 1]});
  return true;
}

bool get_request_logvar(std::string_view name, std::string* value) {
  Exchange* ex = current_exchange();
  if (!ex) return false;
  for (const Var& v : ex->logvars.view) {
    if (v.name == name) {
      value->assign(v.value);
      return true;
    }
  }
  return false;
}

int count_head_fields(std::string_view head) {
  int lines = 0;
  for (char c : head) lines += c == '\n';
  return lines >= 2 ? lines - 2 : 0;  // not the status line, not the blank line
}

void AccessCopy::keep(std::span<const Var> vars, std::string_view line) {
  store_.clear();
  vars_.clear();
  store_.reserve(vars.size() * 2);
  for (const Var& v : vars) {
    store_.emplace_back(v.name);
    store_.emplace_back(v.value);
  }
  for (std::size_t i = 0; i < store_.size(); i += 2) vars_.push_back({store_[i], store_[i + 1]});
  line_.assign(line);
}

// --- options -------------------------------------------------------------------

namespace {

// "[ID ]PLUGIN[:ARGS]", as uWSGI reads --logger and --req-logger.
std::string set_logger(std::string_view v, bool request) {
  std::size_t space = v.find(' ');
  if (space != std::string_view::npos) {
    bool id = space > 0;
    for (std::size_t i = 0; i < space; ++i) id = id && isalnum(static_cast<unsigned char>(v[i]));
    if (id) v = v.substr(space + 1);
  }
  std::size_t colon = v.find(':');
  std::string_view plugin = v.substr(0, colon);
  std::string_view arg = colon == std::string_view::npos ? "" : v.substr(colon + 1);
  const char* opt = request ? "req-logger" : "logger";
  if (plugin == "file") {
    if (arg.empty()) return "expected file:PATH, got '" + std::string(v) + "'";
    std::string path(arg);
    return request ? add_request_log_file(path) : add_log_file(path);
  }
  if (plugin == "stdio" || plugin == "stderr") return {};
  log(Level::kWarn, "--%s %.*s: spindle has no '%.*s' logger; logging to stderr", opt,
      static_cast<int>(v.size()), v.data(), static_cast<int>(plugin.size()), plugin.data());
  return {};
}

}  // namespace

void add_log_options(OptionTable& t) {
  using T = OptionTable;
  Settings& s = settings();
  auto format = [&s](std::string_view v) -> std::string {
    s.formatted = true;
    s.format = parse_format(v);
    s.needs_memory = false;
    for (const Chunk& c : s.format) s.needs_memory = s.needs_memory || is_memory(c.field);
    return {};
  };
  t.add({"log-format", 0, true, "FORMAT",
         "access line from uWSGI's %(name) variables (%(addr) %(method) %(uri) %(status)...)",
         format});
  t.add({"logformat", 0, true, "FORMAT", "same as --log-format", format});
  t.add({"log-format-strftime", 0, false, "",
         "%(ftime) in --log-format is the date in the --log-date FORMAT", T::flag(s.format_strftime)});
  t.add({"logformat-strftime", 0, false, "", "same as --log-format-strftime",
         T::flag(s.format_strftime)});
  t.add({"log-4xx", 0, false, "", "with --disable-logging, still log 4xx responses",
         T::flag(s.log_4xx)});
  t.add({"log-5xx", 0, false, "", "with --disable-logging, still log 5xx responses",
         T::flag(s.log_5xx)});
  t.add({"log-slow", 0, true, "MS",
         "with --disable-logging, still log requests that took MS milliseconds or more",
         T::integer(s.slow_ms, 0, 1000000000L)});
  t.add({"log-x-forwarded-for", 0, false, "",
         "log the X-Forwarded-For header as the client address", T::flag(s.x_forwarded_for)});
  auto date = [&s](std::string_view v) -> std::string {
    // Bare, or a boolean: lines are dated already. Anything else is a
    // strftime format for the date in every line's prefix.
    if (v.empty() || v == "true" || v == "1" || v == "on" || v == "yes" || v == "false" ||
        v == "0" || v == "off" || v == "no")
      return {};
    s.date_format.assign(v);
    set_log_date_format(s.date_format);
    return {};
  };
  OptionDef d{"log-date", 0, true, "[FORMAT]",
              "date every log line with strftime FORMAT (bare: the default date)", date};
  d.optional_value = true;
  t.add(d);
  d.name = "logdate";
  d.help = "same as --log-date";
  t.add(d);
  t.add({"logger", 0, true, "file:PATH", "write the log to PATH instead of stderr (repeatable)",
         [](std::string_view v) { return set_logger(v, false); }, true});
  t.add({"req-logger", 0, true, "file:PATH",
         "write the access log to PATH instead (repeatable)",
         [](std::string_view v) { return set_logger(v, true); }, true});
  t.add({"logger-req", 0, true, "file:PATH", "same as --req-logger",
         [](std::string_view v) { return set_logger(v, true); }, true});
  add_log_master_options(t);
}

}  // namespace spindle::core
