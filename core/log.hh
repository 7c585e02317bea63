// Logging: one line per event, with a level, to stderr (the master and the
// workers share it). The access log is one line per request, same stream.
#pragma once

#include <cstdarg>
#include <cstddef>

namespace spindle::core {

enum class Level { kDebug, kInfo, kWarn, kError };

void log(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
#define SPINDLE_LOG_INFO(...) ::spindle::core::log(::spindle::core::Level::kInfo, __VA_ARGS__)
#define SPINDLE_LOG_WARN(...) ::spindle::core::log(::spindle::core::Level::kWarn, __VA_ARGS__)
#define SPINDLE_LOG_ERROR(...) ::spindle::core::log(::spindle::core::Level::kError, __VA_ARGS__)

// The access log: one line per request, level ACCESS.
void log_access(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Writes raw text (a Python traceback, wsgi.errors output) to the log stream,
// prefixing every line so it stays one line per event.
void log_text(Level level, const char* text, std::size_t len);

// Fatal start-up or internal error: logs and exits. Replaceable so that unit
// tests can trap it.
using FatalHook = void (*)(const char* message);
void set_fatal_hook(FatalHook hook);
[[noreturn]] void fatal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace spindle::core
