// Options, declared once.
//
// Every option is one OptionDef row: its long name, optional short letter,
// whether it takes a value, a metavar and help text, a setter, and its fate.
// The same rows drive the command line (--name value, --name=value, -p 4),
// ini files (see config_reader.hh for uWSGI's syntax), UWSGI_*/SPINDLE_*
// environment variables and --help. core/ declares its own rows, each plugin
// adds its rows, then add_uwsgi_rows() adds every other uWSGI 2.0 option
// name with its fate (accepted with no effect, or not supported).
//
// Errors: a setter returns an empty string on success or a short reason; the
// parser turns it into one line naming the option (and file:line for ini),
// e.g. "spindle: --processes: expected a whole number from 1 to 1024, got 'x'".
// Every refusal of a run is reported, one line each; the caller prints them
// and exits with code 2.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/uwsgi_names.hh"

namespace spindle::core {

using Setter = std::function<std::string(std::string_view value)>;

struct OptionDef {
  std::string name;         // "http-socket"
  char short_name = 0;      // 'p', or 0
  bool takes_value = true;  // false: a flag (ini: true/false/1/0/yes/no/on/off)
  std::string metavar;      // "ADDR"
  std::string help;         // one line
  Setter set;
  bool repeatable = false;  // may be given more than once (lists)
  Fate fate = Fate::kImplemented;
  bool optional_value = false;  // a bare --name (or ini key) means `implicit`
  std::string implicit = {};
};

// A uWSGI option the configuration used that spindle does not implement:
// one WARN line at start-up.
struct FateNote {
  std::string name;
  std::string where;
  Fate fate;
  std::string why;
};

class OptionTable {
 public:
  void add(OptionDef def);
  const std::vector<OptionDef>& rows() const { return rows_; }
  const OptionDef* find(std::string_view name) const;  // '_' == '-'
  const OptionDef* find_short(char c) const;

  // Gathers the environment's UWSGI_*/SPINDLE_* variables (env may be
  // nullptr) and argv[1..] (--ini FILE[:SECTION] read at its place), expands
  // them, then applies every entry in order. Returns 0 when the options are
  // set, 1 when --help or --version printed and the program should exit 0,
  // 2 on errors (*err holds them, one line each, '\n'-separated).
  int parse_args(int argc, const char* const* argv, std::string* err, char** env = nullptr);

  // Reads one ini file (FILE[:SECTION]) alone. Returns 0 or 2.
  int parse_ini(const std::string& path, std::string* err);

  // After parsing: the uWSGI options used that spindle does not implement,
  // once per name, and other start-up notes (a file without our section).
  const std::vector<FateNote>& fate_notes() const { return fate_notes_; }
  const std::vector<std::string>& notes() const { return notes_; }
  bool strict() const { return strict_; }

  // Applies one option by name (used by both parsers). 0 or 2.
  int apply(std::string_view name, std::string_view value, bool has_value,
            const std::string& where, std::string* err);

  std::string help(std::string_view program) const;

  // --- generic setters: a simple option is one row and no code -----------
  static Setter flag(bool& target);
  static Setter text(std::string& target);
  static Setter list(std::vector<std::string>& target);
  static Setter integer(long& target, long min, long max);
  static Setter integer(int& target, int min, int max);
  static Setter size(std::uint64_t& target);  // 4096, 64k, 10M, 1G
  static Setter seconds(double& target);       // 30, 0.5, 250ms
  static Setter ignored();                     // uWSGI options with no effect here

 private:
  int apply_all(class ConfigReader& reader, std::string* err);

  std::vector<OptionDef> rows_;
  std::vector<FateNote> fate_notes_;
  std::vector<std::string> notes_;
  bool strict_ = false;
};

// Adds a row for every uWSGI 2.0 option name that has none yet, with the
// fate from fates.cc. Call after the core and the plugins added theirs.
void add_uwsgi_rows(OptionTable& table);

// --help, --usage and --version: answered by the parser, not table rows.
bool is_builtin_name(std::string_view name);

}  // namespace spindle::core
