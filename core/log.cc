#include "core/log.hh"

#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace spindle::core {

namespace {

const char* level_name(Level level) {
  switch (level) {
    case Level::kDebug: return "DEBUG";
    case Level::kInfo: return "INFO";
    case Level::kWarn: return "WARN";
    case Level::kError: return "ERROR";
  }
  return "?";
}

// One write(2) per line so that lines from the master and the workers, which
// share stderr, never interleave mid-line.
std::size_t prefix(char* buf, std::size_t cap, const char* level) {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  std::size_t n = strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
  n += snprintf(buf + n, cap - n, ".%03d [%d] %s ", static_cast<int>(tv.tv_usec / 1000),
                static_cast<int>(getpid()), level);
  return n;
}

void emit(char* buf, std::size_t n, std::size_t cap) {
  if (n >= cap) n = cap - 1;
  buf[n++] = '\n';
  ssize_t ignored = write(STDERR_FILENO, buf, n);
  (void)ignored;
}

void default_fatal(const char* message) {
  (void)message;
  std::exit(1);
}

FatalHook fatal_hook = default_fatal;

}  // namespace

void vlog(const char* level, const char* fmt, va_list ap) {
  char buf[2048];
  std::size_t n = prefix(buf, sizeof buf - 1, level);
  int m = vsnprintf(buf + n, sizeof buf - 1 - n, fmt, ap);
  if (m > 0) n += static_cast<std::size_t>(m);
  emit(buf, n, sizeof buf);
}

void log(Level level, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(level_name(level), fmt, ap);
  va_end(ap);
}

void log_access(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog("ACCESS", fmt, ap);
  va_end(ap);
}

void log_text(Level level, const char* text, std::size_t len) {
  std::size_t start = 0;
  while (start < len) {
    std::size_t end = start;
    while (end < len && text[end] != '\n') ++end;
    if (end > start) log(level, "%.*s", static_cast<int>(end - start), text + start);
    start = end + 1;
  }
}

void set_fatal_hook(FatalHook hook) { fatal_hook = hook ? hook : default_fatal; }

void fatal(const char* fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  log(Level::kError, "%s", msg);
  fatal_hook(msg);
  std::abort();  // a hook that returns is a bug
}

}  // namespace spindle::core
