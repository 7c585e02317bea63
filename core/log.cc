#include "core/log.hh"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

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

// Set at option time, before the workers fork; read-only afterwards.
std::vector<int> g_log_fds;  // --logger file:PATH; empty: g_direct_fd
std::vector<int> g_req_fds;  // --req-logger file:PATH; empty: as other lines
std::vector<std::string> g_log_paths, g_req_paths;  // their names, for reopen_log_files()
std::string g_date_format;   // --log-date FORMAT
int g_direct_fd = STDERR_FILENO;  // the log without logger files (see set_log_direct_fd)

constexpr std::size_t kPrefixCap = 128;

std::size_t prefix(char* buf, std::size_t cap, const char* level) {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  localtime_r(&tv.tv_sec, &tm);
  std::size_t n = 0;
  if (!g_date_format.empty()) {
    n = strftime(buf, cap - 40, g_date_format.c_str(), &tm);
    n += snprintf(buf + n, cap - n, " [%d] %s ", static_cast<int>(getpid()), level);
    return n;
  }
  n = strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
  n += snprintf(buf + n, cap - n, ".%03d [%d] %s ", static_cast<int>(tv.tv_usec / 1000),
                static_cast<int>(getpid()), level);
  return n;
}

// One write(2) per line so that lines from the master and the workers, which
// share stderr (or a file opened with O_APPEND), never interleave mid-line.
void emit(char* buf, std::size_t n, std::size_t cap, bool request) {
  if (n >= cap) n = cap - 1;
  buf[n++] = '\n';
  log_write_raw(buf, n, request);
}

void write_all(int fd, const char* buf, std::size_t n) {
  while (n > 0) {
    ssize_t k = write(fd, buf, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return;
    buf += k;
    n -= static_cast<std::size_t>(k);
  }
}

int open_append(const std::string& path) {
  return open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

std::string open_log(const std::string& path, std::vector<int>* fds,
                     std::vector<std::string>* paths) {
  int fd = open_append(path);
  if (fd < 0) return "cannot open " + path + ": " + strerror(errno);
  fds->push_back(fd);
  paths->push_back(path);
  return {};
}

void default_fatal(const char* message) {
  (void)message;
  std::exit(1);
}

FatalHook fatal_hook = default_fatal;

// A log line is one event on one line, whatever a request put in it: every
// control byte (CR, LF, NUL, ESC...) is written escaped, and a message
// longer than kMaxMessage is cut with a marker saying how much was left
// out. Request lines, header values and uwsgi variables reach the log, and
// a client must not be able to forge or hide lines with them.
constexpr std::size_t kMaxMessage = 8192;

// Buffers per thread rather than on the stack: cores log from fiber stacks.
// Workers and the master log from one thread each, never re-entrantly.
thread_local char t_message[kMaxMessage + 1];
thread_local char t_line[kPrefixCap + 4 * kMaxMessage + 64];

std::size_t escape_into(char* out, const char* in, std::size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c >= 0x20 && c != 0x7f) {
      out[k++] = static_cast<char>(c);
      continue;
    }
    out[k++] = '\\';
    switch (c) {
      case '\r': out[k++] = 'r'; break;
      case '\n': out[k++] = 'n'; break;
      case '\t': out[k++] = 't'; break;
      default:
        out[k++] = 'x';
        out[k++] = kHex[c >> 4];
        out[k++] = kHex[c & 15];
    }
  }
  return k;
}

// The message (its first `kept` bytes at `text`, `full` in all) escaped
// into one line, with the prefix unless raw.
void write_line(const char* level, const char* text, std::size_t full, bool raw,
                bool request) {
  std::size_t kept = full < kMaxMessage ? full : kMaxMessage;
  char* line = t_line;
  std::size_t n = raw ? 0 : prefix(line, kPrefixCap, level);
  n += escape_into(line + n, text, kept);
  if (kept < full)
    n += static_cast<std::size_t>(snprintf(line + n, 64, " [cut: %zu more bytes]", full - kept));
  emit(line, n, sizeof t_line, request);
}

void vlog(const char* level, const char* fmt, va_list ap, bool request) {
  int m = vsnprintf(t_message, sizeof t_message, fmt, ap);
  write_line(level, t_message, m > 0 ? static_cast<std::size_t>(m) : 0, false, request);
}

}  // namespace

void log_access_text(std::string_view text, bool raw) {
  write_line("ACCESS", text.data(), text.size(), raw, true);
}

std::string add_log_file(const std::string& path) {
  return open_log(path, &g_log_fds, &g_log_paths);
}

std::string add_request_log_file(const std::string& path) {
  return open_log(path, &g_req_fds, &g_req_paths);
}

bool has_request_log_files() { return !g_req_fds.empty(); }

void log_write_raw(const char* buf, std::size_t n, bool request) {
  const std::vector<int>& fds = request && !g_req_fds.empty() ? g_req_fds : g_log_fds;
  if (fds.empty()) write_all(g_direct_fd, buf, n);
  for (int fd : fds) write_all(fd, buf, n);
}

void set_log_direct_fd(int fd) { g_direct_fd = fd; }

void log_route_to(int req_fd) {
  for (int fd : g_log_fds) close(fd);
  for (int fd : g_req_fds) close(fd);
  g_log_fds.clear();
  g_req_fds.clear();
  if (req_fd >= 0) g_req_fds.push_back(req_fd);
  g_direct_fd = STDERR_FILENO;
}

std::string reopen_log_files() {
  std::string failed;
  auto again = [&failed](std::vector<int>& fds, const std::vector<std::string>& paths) {
    for (std::size_t i = 0; i < fds.size() && i < paths.size(); ++i) {
      int fd = open_append(paths[i]);
      // dup3 swaps the file under the same number: a write in flight on
      // another thread lands in one file or the other, whole.
      if (fd < 0 || dup3(fd, fds[i], O_CLOEXEC) < 0) {
        failed += (failed.empty() ? "" : "; ") + paths[i] + ": " + strerror(errno);
      }
      if (fd >= 0) close(fd);
    }
  };
  again(g_log_fds, g_log_paths);
  again(g_req_fds, g_req_paths);
  return failed;
}

void set_log_date_format(std::string format) { g_date_format = std::move(format); }

void log(Level level, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(level_name(level), fmt, ap, false);
  va_end(ap);
}

void log_access(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog("ACCESS", fmt, ap, true);
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
