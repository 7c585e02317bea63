// Gathers the configuration the way uWSGI 2.0 does, before any option is set.
//
// Sources, in order: UWSGI_<OPTION> and SPINDLE_<OPTION> environment
// variables, then the command line, where every --ini FILE[:SECTION] (and
// every `ini = ...` inside a file) is read at its place. Each key = value
// becomes an Entry, in that order; nothing is applied yet.
//
// While gathering: ini files get their magic variables (%d %p %s %n %e %c %x
// %k %h %% ...) replaced in their text; a line without '=' is a key set to
// true; [uwsgi] (or [spindle], or the asked section) is read, others skipped;
// if-env / if-not-env / if-exists / if-not-exists / if-file / if-dir /
// if-opt / if-reload ... endif (and else) and for / for-glob / for-times /
// for-readline ... endfor blocks are resolved, with %(_) replaced; `set` and
// `set-placeholder` add keys.
//
// Then expand() runs three passes over every value, as uWSGI does: $(VAR)
// (with $(VAR:-default) and $(VAR-default)), @(file), and %(key) where key is
// any other key of the configuration (option or not; the first one wins),
// with uWSGI's arithmetic: %(processes * 2), %(a b) concatenates. A reference
// that resolves to nothing stays as written, so log-format's %(status) is
// left for the access log.
#pragma once

#include <string>
#include <vector>

namespace spindle::core {

struct Entry {
  std::string key;    // normalised: '_' -> '-'
  std::string value;
  bool has_value = false;
  std::string where;  // "FILE:LINE", "$UWSGI_X", or "" for the command line
  bool placeholder_only = false;
};

class ConfigReader {
 public:
  // Adds one key; logic keys (if-*, for, endif ...) and `ini` act at once.
  void add(const std::string& key, const std::string& value, bool has_value,
           const std::string& where);

  // Reads FILE[:SECTION] (":SECTION" alone means the last file read).
  // Returns the path of the file it read ("" if none).
  std::string read_ini(const std::string& spec, const std::string& where);

  // UWSGI_* and SPINDLE_* variables of environ (spindle's own internal
  // variables are skipped).
  void read_env(char** environ);

  void expand();

  std::vector<Entry> entries;
  std::vector<std::string> errors;    // one line each, with file:line
  std::vector<std::string> warnings;  // e.g. a file without our section

  // First value of a key (nullptr if none).
  const std::string* first(const std::string& key) const;

 private:
  void add_plain(const std::string& key, const std::string& value, bool has_value,
                 const std::string& where);
  bool in_logic(const std::string& key, const std::string& value, bool has_value,
                const std::string& where);

  std::string last_file_;
  int depth_ = 0;
  // The open if/for block: its kind ("if-env", "for", "else" ...), its
  // argument, and whether the last if failed (for else).
  std::string logic_;
  std::string logic_arg_;
  bool if_failed_ = false;
};

std::string normalize_key(std::string_view name);

}  // namespace spindle::core
