#include "core/config_reader.hh"

#include <glob.h>
#include <pwd.h>
#include <grp.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "core/plugin.hh"

namespace spindle::core {

namespace {

// An ini file that includes itself (directly or through others) must fail
// with a message, not overflow the stack.
constexpr int kMaxIniDepth = 10;
// A value that keeps expanding into itself stops after this many rounds.
constexpr int kMaxExpansions = 64;

std::string trim(std::string_view s) {
  const char* ws = " \t\r\n\f\v";
  std::size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  std::size_t e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

// "value   # comment" -> "value". uWSGI keeps such comments in the value,
// which only numbers survive (its strtol stops at the space); spindle drops
// them for every option (see README, "Moving from uWSGI").
std::string strip_comment(const std::string& v) {
  for (std::size_t i = 1; i < v.size(); ++i) {
    if (v[i] == '#' && (v[i - 1] == ' ' || v[i - 1] == '\t')) return trim(v.substr(0, i));
  }
  return v;
}

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  struct stat st;
  return stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}

std::string cwd() {
  char buf[PATH_MAX];
  return getcwd(buf, sizeof buf) ? std::string(buf) : std::string();
}

std::string replace_all(std::string s, std::string_view from, const std::string& to) {
  if (from.empty()) return s;
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

bool exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}
bool is_file(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool is_dir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string hostname() {
  char buf[256] = "";
  gethostname(buf, sizeof buf - 1);
  return buf;
}

// The magic variables of one config file (uWSGI's names).
std::map<char, std::string> magic_for(const std::string& given, const std::string& section) {
  std::map<char, std::string> m;
  std::string full = given;
  struct stat st;
  if (lstat(given.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    if (given.front() != '/') full = cwd() + "/" + given;
  } else if (char* real = realpath(given.c_str(), nullptr)) {
    full = real;
    free(real);
  }
  std::size_t slash = full.rfind('/');
  std::string dir = slash == std::string::npos ? std::string() : full.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? full : full.substr(slash + 1);
  std::size_t dot = base.rfind('.');
  m['o'] = given;
  m['p'] = full;
  m['s'] = base;
  m['d'] = dir;
  m['e'] = dot == std::string::npos ? std::string() : base.substr(dot + 1);
  m['n'] = dot == std::string::npos ? base : base.substr(0, dot);
  std::string d = dir.size() > 1 ? dir.substr(0, dir.size() - 1) : dir;
  std::size_t ds = d.rfind('/');
  m['c'] = ds == std::string::npos ? d : d.substr(ds + 1);
  int n = 0;
  std::istringstream parts(d);
  for (std::string part; std::getline(parts, part, '/') && n < 10;) {
    if (!part.empty()) m[static_cast<char>('0' + n++)] = part;
  }
  m['x'] = section;
  m['h'] = hostname();
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  m['k'] = std::to_string(cpus > 0 ? cpus : 1);
  m['v'] = cwd();
  m['u'] = std::to_string(getuid());
  m['g'] = std::to_string(getgid());
  struct passwd* pw = getpwuid(getuid());
  m['U'] = pw ? pw->pw_name : m['u'];
  struct group* gr = getgrgid(getgid());
  m['G'] = gr ? gr->gr_name : m['g'];
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  m['t'] = std::to_string(tv.tv_sec);
  m['T'] = std::to_string(static_cast<long long>(tv.tv_sec) * 1000000 + tv.tv_usec);
  m['V'] = "2.0";
  char exe[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  m['b'] = len > 0 ? std::string(exe, static_cast<std::size_t>(len)) : std::string();
  if (stat(full.c_str(), &st) == 0) m['i'] = std::to_string(st.st_ino);
  return m;
}

// %X -> its value; %% -> %; %( is left for the placeholder pass; an unknown
// letter is left as written.
std::string apply_magic(const std::string& text, const std::map<char, std::string>& m) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 1 < text.size()) {
      char c = text[i + 1];
      if (c == '%') {
        out += '%';
        ++i;
        continue;
      }
      auto it = m.find(c);
      if (it != m.end()) {
        out += it->second;
        ++i;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

bool is_logic_key(const std::string& k) {
  static const char* const keys[] = {
      "if-opt",  "if-not-opt", "if-env",      "ifenv",       "if-not-env",   "if-reload",
      "if-not-reload", "if-hostname", "if-not-hostname", "if-exists", "ifexists",
      "if-not-exists", "if-file", "if-not-file", "if-dir", "ifdir", "if-directory",
      "if-not-dir", "if-plugin", "ifplugin", "if-not-plugin", "for", "for-glob", "for-times",
      "for-readline"};
  for (const char* key : keys)
    if (k == key) return true;
  return false;
}

bool is_end_key(const std::string& k) {
  return k == "endif" || k == "end-if" || k == "endfor" || k == "end-for" || k == "end";
}

bool have_plugin(const std::string& name) {
  if (name == "python" || name == "python3" || name.rfind("python3", 0) == 0 || name == "http" ||
      name == "corerouter")
    return true;
  for (Plugin* p : plugins())
    if (p->name() == name) return true;
  return false;
}

bool is_reload() { return getenv("SPINDLE_LISTEN_FDS") != nullptr; }

}  // namespace

std::string normalize_key(std::string_view name) {
  std::string out(name);
  for (char& c : out)
    if (c == '_') c = '-';
  return out;
}

const std::string* ConfigReader::first(const std::string& key) const {
  for (const Entry& e : entries)
    if (e.key == key) return &e.value;
  return nullptr;
}

void ConfigReader::add(const std::string& raw_key, const std::string& value, bool has_value,
                       const std::string& where) {
  std::string key = normalize_key(raw_key);
  if (is_end_key(key)) {
    logic_.clear();
    logic_arg_.clear();
    if_failed_ = false;
    return;
  }
  if (key == "else") {
    logic_ = "else";
    return;
  }
  if (is_logic_key(key)) {
    logic_ = key;
    logic_arg_ = value;
    if_failed_ = false;
    return;
  }
  if (!logic_.empty() && in_logic(key, value, has_value, where)) return;
  add_plain(key, value, has_value, where);
}

// Applies the open block to one key. Returns true when the block decided
// (the key was added zero or more times), false when it does not apply.
bool ConfigReader::in_logic(const std::string& key, const std::string& value, bool has_value,
                            const std::string& where) {
  const std::string& arg = logic_arg_;
  auto with = [&](const std::string& it) {
    add_plain(key, replace_all(value, "%(_)", it), has_value, where);
  };
  auto cond = [&](bool pass, const std::string& it) {
    if_failed_ = !pass;
    if (pass) with(it);
    return true;
  };
  // NAME or NAME=VALUE: does the variable (or option) exist / equal VALUE?
  auto compare = [&](const char* found, bool negate) {
    std::size_t eq = arg.find('=');
    bool pass;
    if (eq == std::string::npos) {
      pass = found != nullptr;
    } else {
      pass = found != nullptr && arg.substr(eq + 1) == found;
    }
    if (negate) pass = !pass;
    return cond(pass, found ? found : "");
  };
  auto name_part = [&]() { return arg.substr(0, arg.find('=')); };

  if (logic_ == "for") {
    std::istringstream ss(arg);
    for (std::string tok; ss >> tok;) with(tok);
    return true;
  }
  if (logic_ == "for-times") {
    long n = std::atol(arg.c_str());
    for (long i = 1; i <= n; ++i) with(std::to_string(i));
    return true;
  }
  if (logic_ == "for-glob") {
    glob_t g;
    if (glob(arg.c_str(), GLOB_MARK | GLOB_NOCHECK, nullptr, &g) == 0) {
      for (std::size_t i = 0; i < g.gl_pathc; ++i) with(g.gl_pathv[i]);
      globfree(&g);
    }
    return true;
  }
  if (logic_ == "for-readline") {
    std::ifstream in(arg);
    if (!in) {
      errors.push_back(where + (where.empty() ? "" : ": ") + "for-readline: cannot read '" + arg +
                       "'");
      return true;
    }
    for (std::string line; std::getline(in, line);) with(trim(line));
    return true;
  }
  if (logic_ == "else") {
    if (if_failed_) add_plain(key, value, has_value, where);
    return true;
  }
  if (logic_ == "if-env" || logic_ == "ifenv") return compare(getenv(name_part().c_str()), false);
  if (logic_ == "if-not-env") return compare(getenv(name_part().c_str()), true);
  if (logic_ == "if-opt" || logic_ == "if-not-opt") {
    const std::string* v = first(normalize_key(name_part()));
    return compare(v ? v->c_str() : nullptr, logic_ == "if-not-opt");
  }
  if (logic_ == "if-exists" || logic_ == "ifexists") return cond(exists(arg), arg);
  if (logic_ == "if-not-exists") return cond(!exists(arg), arg);
  if (logic_ == "if-file") return cond(is_file(arg), arg);
  if (logic_ == "if-not-file") return cond(!is_file(arg), arg);
  if (logic_ == "if-dir" || logic_ == "ifdir" || logic_ == "if-directory")
    return cond(is_dir(arg), arg);
  if (logic_ == "if-not-dir") return cond(!is_dir(arg), arg);
  if (logic_ == "if-reload") return cond(is_reload(), "");
  if (logic_ == "if-not-reload") return cond(!is_reload(), "");
  if (logic_ == "if-hostname") return cond(hostname() == arg, arg);
  if (logic_ == "if-not-hostname") return cond(hostname() != arg, arg);
  if (logic_ == "if-plugin" || logic_ == "ifplugin") return cond(have_plugin(arg), arg);
  if (logic_ == "if-not-plugin") return cond(!have_plugin(arg), arg);
  return false;
}

void ConfigReader::add_plain(const std::string& key, const std::string& value, bool has_value,
                             const std::string& where) {
  // Read at once, at their place, so later keys override what they set.
  if (key == "ini" || ((key == "include" || key == "config") && value.size() > 4 &&
                       value.find(".ini") != std::string::npos)) {
    std::string path = read_ini(value, where);
    entries.push_back({key, path.empty() ? value : path, has_value, where, key != "ini"});
    return;
  }
  if (key == "set" || key == "set-placeholder" || key == "set-ph") {
    std::size_t eq = value.find('=');
    if (eq == std::string::npos || eq == 0) {
      errors.push_back((where.empty() ? "" : where + ": ") + "--" + key +
                       ": expected KEY=VALUE, got '" + value + "'");
      return;
    }
    // A key set on the command line is a placeholder like one in a file,
    // not a mistyped option.
    const std::string at = where.empty() ? "--" + key : where;
    Entry e{normalize_key(trim(value.substr(0, eq))), value.substr(eq + 1), true, at,
            key != "set"};
    if (key == "set") {
      add(e.key, e.value, true, at);
    } else {
      entries.push_back(e);
    }
    return;
  }
  entries.push_back({key, value, has_value, where, false});
}

std::string ConfigReader::read_ini(const std::string& spec, const std::string& where) {
  const std::string ctx = where.empty() ? std::string("--ini") : where + ": ini";
  std::string file = spec;
  std::string section;
  std::size_t slash = spec.rfind('/');
  std::size_t colon = spec.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    file = spec.substr(0, colon);
    section = spec.substr(colon + 1);
    if (section.empty()) section = "uwsgi";
    if (file.empty()) file = last_file_;
  }
  if (file.empty()) {
    errors.push_back(ctx + ": no file to read '" + spec + "' from");
    return {};
  }
  // Relative paths are relative to the current directory, as in uWSGI; an
  // include that is not found there is looked up beside the including file.
  if (file.front() != '/' && !exists(file) && !where.empty()) {
    std::string including = where.substr(0, where.rfind(':'));
    std::size_t s = including.rfind('/');
    if (s != std::string::npos && exists(including.substr(0, s + 1) + file))
      file = including.substr(0, s + 1) + file;
  }
  if (depth_ >= kMaxIniDepth) {
    errors.push_back(ctx + ": files nested more than " + std::to_string(kMaxIniDepth) +
                     " deep (does '" + file + "' include itself?)");
    return {};
  }
  std::string text;
  if (!read_file(file, &text)) {
    errors.push_back(ctx + ": cannot read '" + file + "': " +
                     (is_dir(file) ? std::string("is a directory") : std::strerror(errno ? errno : ENOENT)));
    return {};
  }
  last_file_ = file;
  text = apply_magic(text, magic_for(file, section));

  ++depth_;
  std::istringstream in(text);
  std::string current;
  bool found = false;
  int lineno = 0;
  for (std::string line; std::getline(in, line);) {
    ++lineno;
    std::string s = trim(line);
    if (s.empty() || s.front() == '#' || s.front() == ';') continue;
    if (s.front() == '[') {
      current = trim(s.substr(1, s.back() == ']' ? s.size() - 2 : s.size() - 1));
      continue;
    }
    bool ours = section.empty() ? (current == "uwsgi" || current == "spindle") : current == section;
    if (!ours) continue;
    found = true;
    std::size_t eq = s.find('=');
    std::string key = trim(s.substr(0, eq));
    std::string value = eq == std::string::npos ? std::string() : strip_comment(trim(s.substr(eq + 1)));
    if (key.empty()) {
      errors.push_back(file + ":" + std::to_string(lineno) + ": a value without a key: '" + s +
                       "'");
      continue;
    }
    add(key, value, eq != std::string::npos, file + ":" + std::to_string(lineno));
  }
  --depth_;
  if (!found) {
    warnings.push_back(file + ": no [" + (section.empty() ? std::string("uwsgi] or [spindle")
                                                          : section) +
                       "] section");
  }
  return file;
}

void ConfigReader::read_env(char** env) {
  static const char* const internal[] = {
      "UWSGI_RELOADS", "UWSGI_VASSALS_DIR", "UWSGI_EMPEROR_FD", "UWSGI_BROODLORD_NUM",
      "UWSGI_EMPEROR_FD_CONFIG", "UWSGI_EMPEROR_PROXY", "UWSGI_JAIL_PID",
      "UWSGI_ORIGINAL_PROC_NAME", "SPINDLE_LISTEN_FDS", "SPINDLE_OLD_WORKERS",
      "SPINDLE_CHECK_ONLY", "SPINDLE_BIN", "SPINDLE_EXTRA_ARGS", "SPINDLE_DAEMONIZED",
      "SPINDLE_START_DIR"};
  for (char** e = env; e && *e; ++e) {
    std::string_view kv = *e;
    std::size_t plen = kv.rfind("UWSGI_", 0) == 0 ? 6 : kv.rfind("SPINDLE_", 0) == 0 ? 8 : 0;
    std::size_t eq = kv.find('=');
    if (plen == 0 || eq == std::string_view::npos || eq <= plen) continue;
    std::string var(kv.substr(0, eq));
    bool skip = false;
    for (const char* name : internal) skip = skip || var == name;
    if (skip) continue;
    std::string key(kv.substr(plen, eq - plen));
    for (char& c : key) c = c == '_' ? '-' : static_cast<char>(std::tolower(c));
    add(key, std::string(kv.substr(eq + 1)), true, "$" + var);
  }
}

// ---------------------------------------------------------------------------
// Expansion

namespace {

bool is_number(const std::string& s) {
  if (s.empty()) return false;
  std::size_t i = s[0] == '-' && s.size() > 1 ? 1 : 0;
  for (; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

std::string env_with_default(const std::string& key, bool* ok) {
  std::string name = key, def;
  int mode = 0;  // 1: ":-" (unset or empty), 2: "-" (unset)
  if (std::size_t p = key.find(":-"); p != std::string::npos) {
    name = key.substr(0, p);
    def = key.substr(p + 2);
    mode = 1;
  } else if (std::size_t q = key.find('-'); q != std::string::npos) {
    name = key.substr(0, q);
    def = key.substr(q + 1);
    mode = 2;
  }
  const char* v = getenv(name.c_str());
  *ok = true;
  if (mode == 1 && (!v || !*v)) return def;
  if (mode == 2 && !v) return def;
  if (!v) {
    *ok = false;
    return {};
  }
  return v;
}

}  // namespace

void ConfigReader::expand() {
  // One pass: every SYMBOL(key) in every value goes through resolve(); a key
  // it cannot resolve stays as written.
  auto pass = [&](char symbol, auto resolve) {
    for (Entry& e : entries) {
      if (!e.has_value) continue;
      int rounds = 0;
      std::size_t i = 0;
      while (i + 1 < e.value.size() && rounds < kMaxExpansions) {
        if (e.value[i] != symbol || e.value[i + 1] != '(') {
          ++i;
          continue;
        }
        int depth = 0;
        std::size_t j = i + 2;
        for (; j < e.value.size(); ++j) {
          if (e.value[j] == '(') ++depth;
          if (e.value[j] == ')' && depth-- == 0) break;
        }
        if (j >= e.value.size()) break;
        std::string key = e.value.substr(i + 2, j - i - 2);
        bool ok = false;
        std::string val = resolve(key, &ok);
        if (!ok) {
          i = j + 1;
          continue;
        }
        e.value.replace(i, j - i + 1, val);
        ++rounds;  // the replacement may itself hold references: rescan it
      }
    }
  };

  pass('$', [](const std::string& key, bool* ok) { return env_with_default(key, ok); });
  pass('@', [](const std::string& key, bool* ok) {
    std::string text;
    *ok = read_file(key, &text);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
  });
  pass('%', [this](const std::string& key, bool* ok) -> std::string {
    if (key.find(' ') == std::string::npos) {
      const std::string* v = first(normalize_key(key));
      *ok = v != nullptr;
      return v ? *v : std::string();
    }
    // uWSGI's little pipeline: words concatenate, + - * / apply to the
    // next word, ++ and -- to the value so far.
    *ok = true;
    std::istringstream ss(key);
    std::string current;
    bool have = false;
    char op = 0;
    for (std::string tok; ss >> tok;) {
      if (tok == "+" || tok == "-" || tok == "*" || tok == "/") {
        op = tok[0];
        continue;
      }
      if (tok == "++" || tok == "--") {
        if (have) current = std::to_string(std::atoll(current.c_str()) + (tok == "++" ? 1 : -1));
        op = 0;
        continue;
      }
      std::string v;
      if (is_number(tok)) {
        v = tok;
      } else {
        const std::string* found = first(normalize_key(tok));
        v = found ? *found : std::string();
      }
      long long a = std::atoll(current.c_str()), b = std::atoll(v.c_str());
      switch (op) {
        case '+': current = std::to_string(a + b); break;
        case '-': current = std::to_string(a - b); break;
        case '*': current = std::to_string(a * b); break;
        case '/': current = std::to_string(b == 0 ? 0 : a / b); break;
        default: current += v; break;
      }
      have = true;
      op = 0;
    }
    return current;
  });
}

}  // namespace spindle::core
