// Logging: one line per event, with a level, to stderr (the master and the
// workers share it). The access log is one line per request, same stream.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <string>
#include <string_view>

namespace spindle::core {

enum class Level { kDebug, kInfo, kWarn, kError };

void log(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
#define SPINDLE_LOG_INFO(...) ::spindle::core::log(::spindle::core::Level::kInfo, __VA_ARGS__)
#define SPINDLE_LOG_WARN(...) ::spindle::core::log(::spindle::core::Level::kWarn, __VA_ARGS__)
#define SPINDLE_LOG_ERROR(...) ::spindle::core::log(::spindle::core::Level::kError, __VA_ARGS__)

// The access log: one line per request, level ACCESS.
void log_access(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// An access line already formatted (core/access_log.cc): with the usual
// prefix and level ACCESS, or (raw) as it is, as --log-format lines are.
// Either way control bytes are escaped and an overlong line is cut with a
// marker; a NUL in `text` is escaped, never the end of the line.
void log_access_text(std::string_view text, bool raw);

// Where lines go. By default every line goes to stderr. add_log_file() adds a
// file for all lines (--logger file:PATH), add_request_log_file() one for the
// access lines only (--req-logger file:PATH); files are opened for append
// at once, and the reason is returned when that fails (empty: done).
std::string add_log_file(const std::string& path);
std::string add_request_log_file(const std::string& path);

bool has_request_log_files();

// Writes bytes that are whole lines already to where lines go (the access
// log's files for request lines, else the --logger files, else the direct
// descriptor): the log master's writer uses it for the children's lines.
void log_write_raw(const char* buf, std::size_t n, bool request);

// Where lines go when no --logger file is set: stderr by default; the log
// master's own descriptor of the log in a master whose stderr is the pipe.
void set_log_direct_fd(int fd);

// In a child of a log master: lines go to stderr (the pipe), access lines to
// req_fd (or stderr when -1); the logger files are closed in the child.
void log_route_to(int req_fd);

// Reopens the --logger / --req-logger files by name onto the same
// descriptors. "" or what failed.
std::string reopen_log_files();

// --log-date FORMAT: the prefix's time is strftime(FORMAT) instead of
// "2026-01-31 12:00:00.000".
void set_log_date_format(std::string format);

// Writes raw text (a Python traceback, wsgi.errors output) to the log stream,
// prefixing every line so it stays one line per event.
void log_text(Level level, const char* text, std::size_t len);

// Fatal start-up or internal error: logs and exits. Replaceable so that unit
// tests can trap it.
using FatalHook = void (*)(const char* message);
void set_fatal_hook(FatalHook hook);
[[noreturn]] void fatal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace spindle::core
