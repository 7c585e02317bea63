// Options, declared once.
//
// Every option is one OptionDef row: its long name, optional short letter,
// whether it takes a value, a metavar and help text, and a setter. The same
// rows drive the command line (--name value, --name=value, -p 4), ini files
// (--ini FILE: keys of the [spindle] and [uwsgi] sections; '_' and '-' are
// the same in keys) and --help. core/ declares its own rows; each plugin adds
// its rows to the same table before parsing.
//
// Errors: a setter returns an empty string on success or a short reason; the
// parser turns it into one line naming the option (and file:line for ini),
// e.g. "spindle: --processes: expected a whole number from 1 to 1024, got 'x'".
// The caller prints it and exits with code 2.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

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
};

class OptionTable {
 public:
  void add(OptionDef def);
  const std::vector<OptionDef>& rows() const { return rows_; }
  const OptionDef* find(std::string_view name) const;  // '_' == '-'
  const OptionDef* find_short(char c) const;

  // Parses argv[1..]. --ini FILE is read at its place on the command line.
  // Returns 0 when the options are set, 1 when --help or --version printed
  // and the program should exit 0, 2 on an error (*err holds the one line).
  int parse_args(int argc, const char* const* argv, std::string* err);

  // Reads [spindle] and [uwsgi] sections of an ini file. Other sections are
  // skipped. Returns 0 or 2 (with *err naming file:line and the key).
  int parse_ini(const std::string& path, std::string* err);

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
  std::vector<OptionDef> rows_;
};

}  // namespace spindle::core
