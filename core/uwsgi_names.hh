// uWSGI 2.0's option names, and the fate spindle gives each one it does not
// implement itself.
//
// Every name uWSGI knows is a row of spindle's option table. A name spindle
// implements has its own row (core/config.cc, a plugin); every other name gets
// a row from here with one of two fates:
//   kNoEffect     accepted; spindle already behaves that way or has no need
//                 of it. One WARN line at start-up says why.
//   kUnsupported  accepted and ignored, with one WARN line saying what it
//                 would have done; --strict turns it into an error.
#pragma once

#include <string_view>
#include <vector>

namespace spindle::core {

struct UwsgiName {
  const char* name;
  char short_name;  // uWSGI's one-letter flag, or 0
  char arg;         // 'R' takes a value, 'F' a flag, 'O' an optional value
};

// All of them, in uWSGI's table order.
const std::vector<UwsgiName>& uwsgi_names();

enum class Fate { kImplemented, kNoEffect, kUnsupported };

struct FateRule {
  Fate fate;
  const char* why;  // kNoEffect: why not needed; kUnsupported: what it would have done
};

// The fate of a uWSGI name that has no row of its own (exact rules first,
// then the longest matching "prefix*" rule). nullptr if no rule covers it.
const FateRule* fate_of(std::string_view name);

}  // namespace spindle::core
