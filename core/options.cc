#include "core/options.hh"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>

namespace spindle::core {

namespace {

constexpr const char* kVersion = "spindle 0.1.0";
// An ini that includes itself (directly or through others) must fail with a
// message, not overflow the stack.
constexpr int kMaxIniDepth = 10;
// Help text starts in this column unless the left part is longer.
constexpr std::size_t kHelpColumn = 38;

std::string normalize(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (c == '_') c = '-';
  }
  return out;
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n\f\v";
  std::size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  std::size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Empty means "present", which is how ini files spell a bare flag.
bool parse_bool(std::string_view v, bool* out) {
  v = trim(v);
  if (v.empty() || iequals(v, "true") || iequals(v, "1") || iequals(v, "yes") ||
      iequals(v, "on")) {
    *out = true;
    return true;
  }
  if (iequals(v, "false") || iequals(v, "0") || iequals(v, "no") || iequals(v, "off")) {
    *out = false;
    return true;
  }
  return false;
}

std::string quoted(std::string_view v) { return "'" + std::string(v) + "'"; }

bool parse_long(std::string_view v, long* out) {
  if (v.empty()) return false;
  const char* b = v.data();
  const char* e = v.data() + v.size();
  auto [p, ec] = std::from_chars(b, e, *out);
  return ec == std::errc() && p == e;
}

std::string dir_of(const std::string& path) {
  std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {};
  return path.substr(0, slash + 1);
}

std::string resolve(const std::string& base_dir, std::string_view path) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) return std::string(path);
  return base_dir + std::string(path);
}

bool is_ini_key(std::string_view name) { return normalize(name) == "ini"; }

}  // namespace

// ---------------------------------------------------------------------------
// Table

void OptionTable::add(OptionDef def) {
  def.name = normalize(def.name);
  // Two rows with one name would make the second unreachable; that is a bug in
  // whoever added it, so stop at start-up rather than guess.
  if (find(def.name) != nullptr || (def.short_name && find_short(def.short_name))) {
    std::fprintf(stderr, "spindle: option --%s (or -%c) declared twice\n", def.name.c_str(),
                 def.short_name ? def.short_name : '?');
    std::abort();
  }
  rows_.push_back(std::move(def));
}

const OptionDef* OptionTable::find(std::string_view name) const {
  std::string key = normalize(name);
  for (const OptionDef& row : rows_) {
    if (row.name == key) return &row;
  }
  return nullptr;
}

const OptionDef* OptionTable::find_short(char c) const {
  if (c == 0) return nullptr;
  for (const OptionDef& row : rows_) {
    if (row.short_name == c) return &row;
  }
  return nullptr;
}

int OptionTable::apply(std::string_view name, std::string_view value, bool has_value,
                       const std::string& where, std::string* err) {
  const bool in_ini = !where.empty();
  const std::string prefix = in_ini ? where + ": " : std::string();
  const OptionDef* row = find(name);
  if (row == nullptr) {
    *err = in_ini ? prefix + "unknown option " + quoted(name)
                  : "unknown option --" + std::string(name);
    return 2;
  }
  const std::string label = prefix + "--" + row->name;
  std::string reason;
  if (!row->takes_value) {
    // Setters of flags always see "true" or "false", so a custom flag setter
    // need not know every spelling of a boolean.
    bool on = true;
    if (has_value && !parse_bool(value, &on)) {
      *err = label + " takes no value (or true/false/yes/no/on/off/1/0), got " + quoted(value);
      return 2;
    }
    reason = row->set(on ? "true" : "false");
  } else {
    if (!has_value) {
      *err = label + ": missing value";
      return 2;
    }
    reason = row->set(value);
  }
  if (!reason.empty()) {
    *err = label + ": " + reason;
    return 2;
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Ini files

namespace {

int read_ini(OptionTable& table, const std::string& path, int depth, const std::string& where,
             std::string* err);

// `ini = FILE` and `--ini FILE` both go through here: the file is read at
// that point, and the path is offered to an "ini" row, if there is one, so the
// configuration can record which files were read.
int include_ini(OptionTable& table, const std::string& path, int depth, const std::string& where,
                std::string* err) {
  if (depth >= kMaxIniDepth) {
    *err = (where.empty() ? std::string("--ini") : where + ": ini") + ": files nested more than " +
           std::to_string(kMaxIniDepth) + " deep (does " + quoted(path) + " include itself?)";
    return 2;
  }
  if (read_ini(table, path, depth + 1, where, err) != 0) return 2;
  if (const OptionDef* row = table.find("ini"); row != nullptr && row->set) {
    std::string reason = row->set(path);
    if (!reason.empty()) {
      *err = (where.empty() ? std::string() : where + ": ") + "--ini: " + reason;
      return 2;
    }
  }
  return 0;
}

// Reads the whole file, so that a directory or an I/O error is reported
// instead of looking like an empty file. Returns 0 or an errno value.
int slurp(const std::string& path, std::string* out) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return errno ? errno : EIO;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  int e = std::ferror(f) ? (errno ? errno : EIO) : 0;
  std::fclose(f);
  return e;
}

int read_ini(OptionTable& table, const std::string& path, int depth, const std::string& where,
             std::string* err) {
  std::string text;
  if (int e = slurp(path, &text); e != 0) {
    *err = (where.empty() ? std::string("--ini") : where + ": ini") + ": cannot read " +
           quoted(path) + ": " + std::strerror(e);
    return 2;
  }
  std::istringstream in(text);
  const std::string base = dir_of(path);
  bool in_our_section = false;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const std::string here = path + ":" + std::to_string(lineno);
    std::string_view s = trim(line);
    if (s.empty() || s.front() == '#' || s.front() == ';') continue;
    if (s.front() == '[') {
      if (s.back() != ']') {
        *err = here + ": section header without ']'";
        return 2;
      }
      std::string_view name = trim(s.substr(1, s.size() - 2));
      in_our_section = name == "spindle" || name == "uwsgi";
      continue;
    }
    std::size_t eq = s.find('=');
    if (eq == std::string_view::npos || trim(s.substr(0, eq)).empty()) {
      *err = here + ": expected 'key = value' or '[section]', got " + quoted(s);
      return 2;
    }
    // Other sections (paste deploy's [app:main], logging, ...) share the file
    // and are none of our business.
    if (!in_our_section) continue;
    std::string_view key = trim(s.substr(0, eq));
    std::string_view value = trim(s.substr(eq + 1));
    if (is_ini_key(key)) {
      if (include_ini(table, resolve(base, value), depth, here, err) != 0) return 2;
      continue;
    }
    if (table.apply(key, value, true, here, err) != 0) return 2;
  }
  return 0;
}

}  // namespace

int OptionTable::parse_ini(const std::string& path, std::string* err) {
  return read_ini(*this, path, 1, std::string(), err);
}

// ---------------------------------------------------------------------------
// Command line

int OptionTable::parse_args(int argc, const char* const* argv, std::string* err) {
  const char* program = argc > 0 && argv[0] ? argv[0] : "spindle";
  if (const char* slash = std::strrchr(program, '/')) program = slash + 1;
  // A value is the next word unless that word is itself a long option, so a
  // forgotten value reports "missing value" instead of swallowing the option.
  auto next_value = [&](int* i, std::string_view* out) {
    if (*i + 1 >= argc) return false;
    std::string_view next = argv[*i + 1];
    if (next.size() > 2 && next.substr(0, 2) == "--") return false;
    *out = next;
    ++*i;
    return true;
  };

  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.size() > 2 && arg.substr(0, 2) == "--") {
      std::string_view body = arg.substr(2);
      std::string_view name = body;
      std::string_view value;
      bool has_value = false;
      if (std::size_t eq = body.find('='); eq != std::string_view::npos) {
        name = body.substr(0, eq);
        value = body.substr(eq + 1);
        has_value = true;
      }
      std::string key = normalize(name);
      if (key == "help" || key == "version") {
        if (has_value) {
          *err = "--" + key + " takes no value";
          return 2;
        }
        if (key == "help") {
          std::fputs(help(program).c_str(), stdout);
        } else {
          std::printf("%s\n", kVersion);
        }
        return 1;
      }
      const OptionDef* row = find(key);
      const bool wants_value = key == "ini" || (row != nullptr && row->takes_value);
      if (wants_value && !has_value) has_value = next_value(&i, &value);
      if (key == "ini") {
        if (!has_value || value.empty()) {
          *err = "--ini: missing value";
          return 2;
        }
        if (include_ini(*this, std::string(value), 0, std::string(), err) != 0) return 2;
        continue;
      }
      if (apply(key, value, has_value, std::string(), err) != 0) return 2;
      continue;
    }
    if (arg.size() >= 2 && arg[0] == '-' && arg[1] != '-') {
      char c = arg[1];
      if (c == 'h' && find_short('h') == nullptr) {
        std::fputs(help(program).c_str(), stdout);
        return 1;
      }
      const OptionDef* row = find_short(c);
      if (row == nullptr) {
        *err = "unknown option -" + std::string(1, c);
        return 2;
      }
      std::string_view value;
      bool has_value = false;
      if (arg.size() > 2) {
        if (!row->takes_value) {
          *err = "--" + row->name + " (-" + std::string(1, c) + ") takes no value, got " +
                 quoted(arg.substr(2));
          return 2;
        }
        value = arg.substr(2);
        has_value = true;
      } else if (row->takes_value) {
        has_value = next_value(&i, &value);
      }
      if (apply(row->name, value, has_value, std::string(), err) != 0) return 2;
      continue;
    }
    *err = "unexpected argument " + quoted(arg) + " (options start with --; see --help)";
    return 2;
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Help

std::string OptionTable::help(std::string_view program) const {
  struct Line {
    std::string left;
    std::string text;
  };
  std::vector<Line> lines;
  auto left_of = [](char short_name, const std::string& name, const std::string& metavar) {
    std::string left = short_name ? std::string("  -") + short_name + ", " : std::string(6, ' ');
    left += "--" + name;
    if (!metavar.empty()) left += " " + metavar;
    return left;
  };
  for (const OptionDef& row : rows_) {
    std::string metavar = row.takes_value ? (row.metavar.empty() ? "VALUE" : row.metavar) : "";
    lines.push_back({left_of(row.short_name, row.name, metavar), row.help});
  }
  if (find("ini") == nullptr) {
    lines.push_back({left_of(0, "ini", "FILE"), "read the [spindle] and [uwsgi] sections of FILE"});
  }
  lines.push_back({left_of(find_short('h') ? 0 : 'h', "help", ""), "print this help and exit"});
  lines.push_back({left_of(0, "version", ""), "print the version and exit"});

  std::size_t column = 0;
  for (const Line& l : lines) {
    if (l.left.size() + 2 <= kHelpColumn) column = std::max(column, l.left.size() + 2);
  }
  std::string out = "usage: " + std::string(program) + " [options]\n";
  for (const Line& l : lines) {
    out += l.left;
    std::size_t pad = l.left.size() + 2 <= column ? column - l.left.size() : 2;
    out.append(pad, ' ');
    out += l.text;
    out += '\n';
  }
  return out;
}

// ---------------------------------------------------------------------------
// Generic setters

Setter OptionTable::flag(bool& target) {
  return [&target](std::string_view v) -> std::string {
    bool on;
    if (!parse_bool(v, &on)) return "expected true/false/yes/no/on/off/1/0, got " + quoted(v);
    target = on;
    return {};
  };
}

Setter OptionTable::text(std::string& target) {
  return [&target](std::string_view v) -> std::string {
    target.assign(v);
    return {};
  };
}

Setter OptionTable::list(std::vector<std::string>& target) {
  return [&target](std::string_view v) -> std::string {
    if (v.empty()) return "expected a value, got an empty string";
    target.emplace_back(v);
    return {};
  };
}

Setter OptionTable::integer(long& target, long min, long max) {
  return [&target, min, max](std::string_view v) -> std::string {
    long n;
    if (!parse_long(v, &n) || n < min || n > max) {
      return "expected a whole number from " + std::to_string(min) + " to " +
             std::to_string(max) + ", got " + quoted(v);
    }
    target = n;
    return {};
  };
}

Setter OptionTable::integer(int& target, int min, int max) {
  return [&target, min, max](std::string_view v) -> std::string {
    long n;
    if (!parse_long(v, &n) || n < min || n > max) {
      return "expected a whole number from " + std::to_string(min) + " to " +
             std::to_string(max) + ", got " + quoted(v);
    }
    target = static_cast<int>(n);
    return {};
  };
}

Setter OptionTable::size(std::uint64_t& target) {
  return [&target](std::string_view v) -> std::string {
    const std::string bad = "expected a size in bytes like 4096, 64k, 10M or 1G, got " + quoted(v);
    std::string_view digits = v;
    std::uint64_t scale = 1;
    if (!digits.empty()) {
      switch (digits.back()) {
        case 'k':
        case 'K':
          scale = 1ull << 10;
          break;
        case 'm':
        case 'M':
          scale = 1ull << 20;
          break;
        case 'g':
        case 'G':
          scale = 1ull << 30;
          break;
        default:
          break;
      }
      if (scale != 1) digits.remove_suffix(1);
    }
    if (digits.empty() || digits.front() < '0' || digits.front() > '9') return bad;
    std::uint64_t n;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc() || p != digits.data() + digits.size()) return bad;
    if (n > std::numeric_limits<std::uint64_t>::max() / scale) return bad;
    target = n * scale;
    return {};
  };
}

Setter OptionTable::seconds(double& target) {
  return [&target](std::string_view v) -> std::string {
    const std::string bad =
        "expected seconds (0 or more) like 30, 0.5, 250ms, 10s or 2m, got " + quoted(v);
    std::string_view num = v;
    double scale = 1;
    if (num.size() > 2 && num.substr(num.size() - 2) == "ms") {
      scale = 0.001;
      num.remove_suffix(2);
    } else if (!num.empty() && num.back() == 's') {
      num.remove_suffix(1);
    } else if (!num.empty() && num.back() == 'm') {
      scale = 60;
      num.remove_suffix(1);
    }
    // from_chars would accept "inf", "nan" and exponents; a timeout is digits
    // with at most one decimal point.
    if (num.empty() || num.find_first_not_of("0123456789.") != std::string_view::npos ||
        num.find('.') != num.rfind('.') || num == ".") {
      return bad;
    }
    double d;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), d);
    if (ec != std::errc() || p != num.data() + num.size() || !std::isfinite(d * scale)) {
      return bad;
    }
    target = d * scale;
    return {};
  };
}

Setter OptionTable::ignored() {
  return [](std::string_view) -> std::string { return {}; };
}

}  // namespace spindle::core
