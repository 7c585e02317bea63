#include "core/options.hh"

#include "core/config_reader.hh"

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
    if (!has_value || (value.empty() && row->optional_value)) {
      if (!row->optional_value) {
        *err = label + ": missing value";
        return 2;
      }
      value = row->implicit;
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
// Applying a gathered configuration

namespace {

// A flag set to false in a file ("thunder-lock = false") asks for nothing, so
// it needs no warning.
bool asks_for_nothing(const OptionDef& row, const Entry& e) {
  bool on = true;
  return !row.takes_value && e.has_value && parse_bool(e.value, &on) && !on;
}

}  // namespace

int OptionTable::apply_all(ConfigReader& reader, std::string* err) {
  reader.expand();
  std::vector<std::string> errors = reader.errors;
  for (const std::string& w : reader.warnings) notes_.push_back(w);
  // --strict anywhere in the configuration counts for all of it.
  for (const Entry& e : reader.entries) {
    bool on = true;
    if (e.key == "strict" && !e.placeholder_only && (!e.has_value || parse_bool(e.value, &on)))
      strict_ = strict_ || on;
  }
  for (const Entry& e : reader.entries) {
    if (e.placeholder_only) continue;
    const std::string prefix = e.where.empty() ? std::string() : e.where + ": ";
    const OptionDef* row = find(e.key);
    if (row == nullptr) {
      // Unknown to uWSGI too: on the command line a typo, in a file or the
      // environment a placeholder for %(key).
      if (e.where.empty()) {
        errors.push_back("unknown option --" + e.key);
      } else if (strict_) {
        errors.push_back(prefix + "unknown option " + quoted(e.key) + " (--strict)");
      }
      continue;
    }
    if (row->fate != Fate::kImplemented) {
      if (asks_for_nothing(*row, e)) continue;
      if (strict_ && row->fate == Fate::kUnsupported) {
        errors.push_back(prefix + "--" + row->name + " is not supported by spindle: it " +
                         row->help + " (--strict)");
        continue;
      }
      bool seen = false;
      for (const FateNote& n : fate_notes_) seen = seen || n.name == row->name;
      if (!seen) fate_notes_.push_back({row->name, e.where, row->fate, row->help});
      continue;
    }
    std::string one;
    if (apply(e.key, e.value, e.has_value, e.where, &one) != 0) errors.push_back(one);
  }
  if (errors.empty()) return 0;
  err->clear();
  for (const std::string& line : errors) {
    if (!err->empty()) *err += '\n';
    *err += line;
  }
  return 2;
}

int OptionTable::parse_ini(const std::string& path, std::string* err) {
  ConfigReader reader;
  reader.read_ini(path, std::string());
  return apply_all(reader, err);
}

// ---------------------------------------------------------------------------
// Command line

int OptionTable::parse_args(int argc, const char* const* argv, std::string* err, char** env) {
  const char* program = argc > 0 && argv[0] ? argv[0] : "spindle";
  if (const char* slash = std::strrchr(program, '/')) program = slash + 1;
  ConfigReader reader;
  if (env) reader.read_env(env);
  std::vector<std::string> errors;
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
      if (key == "help" || key == "usage" || key == "version") {
        if (has_value) {
          *err = "--" + key + " takes no value";
          return 2;
        }
        if (key == "version") {
          std::printf("%s\n", kVersion);
        } else {
          std::fputs(help(program).c_str(), stdout);
        }
        return 1;
      }
      const OptionDef* row = find(key);
      const bool wants_value = key == "ini" || (row != nullptr && row->takes_value);
      if (wants_value && !has_value && !(row && row->optional_value))
        has_value = next_value(&i, &value);
      if (key == "ini" && (!has_value || value.empty())) {
        errors.push_back("--ini: missing value");
        continue;
      }
      reader.add(key, std::string(value), has_value, std::string());
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
        errors.push_back("unknown option -" + std::string(1, c));
        continue;
      }
      std::string_view value;
      bool has_value = false;
      if (arg.size() > 2) {
        if (!row->takes_value) {
          errors.push_back("--" + row->name + " (-" + std::string(1, c) + ") takes no value, got " +
                           quoted(arg.substr(2)));
          continue;
        }
        value = arg.substr(2);
        has_value = true;
      } else if (row->takes_value && !row->optional_value) {
        has_value = next_value(&i, &value);
      }
      reader.add(row->name, std::string(value), has_value, std::string());
      continue;
    }
    // `spindle uwsgi.ini` reads the file, as `uwsgi uwsgi.ini` does.
    if (arg.size() > 4 && arg.find(".ini") != std::string_view::npos) {
      reader.add("ini", std::string(arg), true, std::string());
      continue;
    }
    errors.push_back("unexpected argument " + quoted(arg) + " (options start with --; see --help)");
  }
  reader.errors.insert(reader.errors.begin(), errors.begin(), errors.end());
  return apply_all(reader, err);
}

// ---------------------------------------------------------------------------
// Help

std::string OptionTable::help(std::string_view program) const {
  struct Line {
    std::string left;
    std::string text;
  };
  auto left_of = [](char short_name, const std::string& name, const std::string& metavar) {
    std::string left = short_name ? std::string("  -") + short_name + ", " : std::string(6, ' ');
    left += "--" + name;
    if (!metavar.empty()) left += " " + metavar;
    return left;
  };
  auto render = [](const std::vector<Line>& lines) {
    std::size_t column = 0;
    for (const Line& l : lines) {
      if (l.left.size() + 2 <= kHelpColumn) column = std::max(column, l.left.size() + 2);
    }
    std::string out;
    for (const Line& l : lines) {
      out += l.left;
      std::size_t pad = l.left.size() + 2 <= column ? column - l.left.size() : 2;
      out.append(pad, ' ');
      out += l.text;
      out += '\n';
    }
    return out;
  };
  std::vector<Line> lines, no_effect, unsupported;
  for (const OptionDef& row : rows_) {
    std::string metavar = row.takes_value ? (row.metavar.empty() ? "VALUE" : row.metavar) : "";
    if (row.optional_value && !metavar.empty()) metavar = "[" + metavar + "]";
    Line l{left_of(row.fate == Fate::kImplemented ? row.short_name : 0, row.name,
                   row.fate == Fate::kImplemented ? metavar : ""),
           row.help};
    if (row.fate == Fate::kImplemented) lines.push_back(l);
    if (row.fate == Fate::kNoEffect) no_effect.push_back(l);
    if (row.fate == Fate::kUnsupported) unsupported.push_back(l);
  }
  if (find("ini") == nullptr) {
    lines.push_back({left_of(0, "ini", "FILE"), "read the [spindle] and [uwsgi] sections of FILE"});
  }
  lines.push_back({left_of(find_short('h') ? 0 : 'h', "help", ""), "print this help and exit"});
  lines.push_back({left_of(0, "version", ""), "print the version and exit"});

  std::string out = "usage: " + std::string(program) + " [options]\n\nimplemented:\n" + render(lines);
  if (!no_effect.empty()) {
    out += "\naccepted from uWSGI with no effect here (one WARN line at start-up says why):\n" +
           render(no_effect);
  }
  if (!unsupported.empty()) {
    out += "\nuWSGI options spindle does not support (ignored with a WARN line saying what they "
           "would have done; an error with --strict):\n" +
           render(unsupported);
  }
  return out;
}

// ---------------------------------------------------------------------------
// uWSGI's other names

bool is_builtin_name(std::string_view name) {
  return name == "help" || name == "usage" || name == "version";
}

void add_uwsgi_rows(OptionTable& table) {
  for (const UwsgiName& n : uwsgi_names()) {
    if (table.find(n.name) != nullptr || is_builtin_name(n.name)) continue;
    OptionDef row;
    row.name = n.name;
    if (n.short_name && table.find_short(n.short_name) == nullptr) row.short_name = n.short_name;
    row.takes_value = n.arg != 'F';
    row.optional_value = n.arg == 'O';
    row.metavar = "VALUE";
    row.set = OptionTable::ignored();
    row.repeatable = true;
    const FateRule* rule = fate_of(n.name);
    row.fate = rule ? rule->fate : Fate::kUnsupported;
    row.help = rule ? rule->why : "would have used a uWSGI feature spindle does not have";
    table.add(std::move(row));
  }
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
