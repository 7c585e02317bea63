#include "core/top.hh"

#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/json.hh"

namespace spindle::core {

namespace {

volatile sig_atomic_t g_quit = 0;
void on_quit(int) { g_quit = 1; }

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Connects to "host:port", "[v6]:port", a unix socket path, or the
// host:port of an http:// URL. -1 with *err set on failure.
int dial(const std::string& addr, std::string* err) {
  if (addr.find(':') == std::string::npos || addr[0] == '/' || addr[0] == '.') {
    sockaddr_un sa{};
    if (addr.size() >= sizeof sa.sun_path) {
      *err = "unix socket path too long";
      return -1;
    }
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, addr.c_str(), addr.size() + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return fd;
    *err = strerror(errno);
    if (fd >= 0) close(fd);
    return -1;
  }
  std::size_t colon = addr.rfind(':');
  std::string host = addr.substr(0, colon), port = addr.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "127.0.0.1";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    *err = gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  *err = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    *err = strerror(errno);
    if (fd >= 0) close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

// One snapshot of the stats JSON.
bool fetch(const std::string& target, std::string* body, std::string* err) {
  bool http = target.rfind("http://", 0) == 0;
  std::string addr = http ? target.substr(7) : target;
  std::string path = "/";
  if (http) {
    std::size_t slash = addr.find('/');
    if (slash != std::string::npos) {
      path = addr.substr(slash);
      addr = addr.substr(0, slash);
    }
  }
  int fd = dial(addr, err);
  if (fd < 0) return false;
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (http) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: " + addr + "\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
      *err = strerror(errno);
      close(fd);
      return false;
    }
  }
  body->clear();
  char buf[16384];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      body->append(buf, static_cast<std::size_t>(n));
      if (body->size() > (64u << 20)) break;
      continue;
    }
    if (n < 0 && errno == EINTR && !g_quit) continue;
    if (n < 0) {
      *err = errno == EAGAIN ? "no answer within 2s" : strerror(errno);
      close(fd);
      return false;
    }
    break;
  }
  close(fd);
  if (http) {
    std::size_t end = body->find("\r\n\r\n");
    if (end == std::string::npos) {
      *err = "not an HTTP response";
      return false;
    }
    body->erase(0, end + 4);
  }
  return true;
}

std::string human(double bytes) {
  char out[32];
  if (bytes >= 1 << 30)
    snprintf(out, sizeof out, "%.1fG", bytes / (1 << 30));
  else if (bytes >= 1 << 20)
    snprintf(out, sizeof out, "%.1fM", bytes / (1 << 20));
  else if (bytes >= 1 << 10)
    snprintf(out, sizeof out, "%.1fK", bytes / (1 << 10));
  else
    snprintf(out, sizeof out, "%.0f", bytes);
  return out;
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

struct Slow {
  long long ms;
  std::string where, state, request;
};

class Top {
 public:
  explicit Top(std::string target) : target_(std::move(target)) {}

  // Renders one frame for a terminal of rows x cols.
  std::string frame(int rows, int cols, bool footer = true) {
    std::vector<std::string> lines;
    std::string body, err;
    JsonValue d;
    double t = now_s();
    if (!fetch(target_, &body, &err) || !JsonValue::parse(body, &d, &err)) {
      lines.push_back("spindle top - " + target_);
      lines.push_back("cannot read the stats: " + err + " (retrying every second)");
      return paint(lines, rows, cols, footer);
    }
    double dt = last_t_ > 0 ? t - last_t_ : 0;
    last_t_ = t;
    const JsonValue& workers = d["workers"];
    long long total = 0, inflight = 0, queued = 0;
    double rps = 0;
    std::map<long long, long long> seen;
    std::vector<Slow> slow;
    std::vector<std::string> rows_w;
    for (const JsonValue& w : workers.items()) {
      long long pid = w["pid"].integer(), req = w["requests"].integer();
      total += req;
      inflight += w["in_flight"].integer();
      queued += w["queued"].integer();
      double r = 0;
      auto prev = last_.find(pid);
      if (dt > 0 && prev != last_.end() && req >= prev->second) r = (req - prev->second) / dt;
      rps += r;
      seen[pid] = req;
      int busy = 0, parked = 0;
      for (const JsonValue& c : w["cores"].items()) {
        if (!c["in_request"].integer()) continue;
        ++busy;
        const std::string& st = c["state"].str();
        if (st != "running" && st != "ready") ++parked;
        slow.push_back({c["request_ms"].integer(),
                        fmt("%lld:%lld", w["id"].integer(), c["id"].integer()),
                        st.empty() ? "busy" : st, c["request"].str()});
      }
      rows_w.push_back(
          fmt("%4lld %8lld  %-6s %9lld %7.1f %7.1fms %8s %5d %6d %6lld %6lld %8lld %4lld",
              w["id"].integer(), pid, w["status"].str().c_str(), req, r,
              static_cast<double>(w["avg_rt"].integer()) / 1000.0, human(w["rss"].number()).c_str(),
              busy, parked, w["queued"].integer(), w["connections"].integer(),
              w["respawn_count"].integer(), w["harakiri_count"].integer()));
    }
    last_ = std::move(seen);
    time_t now = time(nullptr);
    char clock[16];
    strftime(clock, sizeof clock, "%H:%M:%S", localtime(&now));
    lines.push_back(fmt("spindle top - %s - %s - master pid %lld - %s", target_.c_str(),
                        d["version"].str().c_str(), d["pid"].integer(), clock));
    std::string respawns;
    for (const char* k : {"harakiri", "signal", "exit", "max-requests", "reload-on-rss"}) {
      long long n = d["respawns"][k].integer();
      if (n) respawns += fmt(" %s:%lld", k, n);
    }
    lines.push_back(
        fmt("requests %lld   req/s %.1f   in flight %lld   queued %lld   listen "
            "queue %lld   reloads %lld   respawns%s",
            total, rps, inflight, queued, d["listen_queue"].integer(), d["reloads"].integer(),
            respawns.empty() ? " 0" : respawns.c_str()));
    lines.push_back("");
    lines.push_back(fmt("%4s %8s  %-6s %9s %7s %9s %8s %5s %6s %6s %6s %8s %4s", "WID", "PID",
                        "STATUS", "REQ", "REQ/S", "AVG", "RSS", "BUSY", "PARKED", "QUEUED", "CONNS",
                        "RESPAWNS", "HARA"));
    for (std::string& r : rows_w) lines.push_back(std::move(r));
    lines.push_back("");
    std::sort(slow.begin(), slow.end(), [](const Slow& a, const Slow& b) { return a.ms > b.ms; });
    lines.push_back(fmt("%-8s %-8s %9s  %s", "CORE", "STATE", "TIME", "REQUEST (slowest first)"));
    if (slow.empty()) lines.push_back("(no request in flight)");
    for (const Slow& s : slow) {
      if (static_cast<int>(lines.size()) >= rows - 1) break;
      lines.push_back(fmt("%-8s %-8s %8.1fs  %s", s.where.c_str(), s.state.c_str(),
                          static_cast<double>(s.ms) / 1000.0, s.request.c_str()));
    }
    return paint(lines, rows, cols, footer);
  }

 private:
  std::string paint(std::vector<std::string>& lines, int rows, int cols, bool footer) {
    std::string out = "\033[H";
    int n = 0;
    for (std::string& l : lines) {
      if (n >= rows - 1) break;
      if (static_cast<int>(l.size()) > cols) l.resize(static_cast<std::size_t>(cols));
      for (char& c : l)
        if (static_cast<unsigned char>(c) < 0x20) c = '?';
      out += l;
      out += "\033[K\r\n";
      ++n;
    }
    out += "\033[J";
    if (footer) out += fmt("\033[%d;1H\033[7m q quits \033[0m", rows);
    return out;
  }

  std::string target_;
  double last_t_ = 0;
  std::map<long long, long long> last_;  // requests per worker pid, last frame
};

void window(int* rows, int* cols) {
  winsize ws{};
  *rows = 24;
  *cols = 80;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
    *rows = ws.ws_row;
    *cols = ws.ws_col;
  }
}

void put(const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(STDOUT_FILENO, s.data() + off, s.size() - off);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    off += static_cast<std::size_t>(n);
  }
}

int usage() {
  fprintf(stderr,
          "usage: spindle top ADDR [--once]   (ADDR: the --stats address: host:port, a "
          "unix socket path, or http://host:port/ with --stats-http)\n");
  return 2;
}

}  // namespace

int run_top(int argc, char** argv) {
  std::string target;
  bool once = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--once") {
      once = true;
    } else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else if (target.empty() && !a.empty() && a[0] != '-') {
      target = a;
    } else {
      fprintf(stderr, "spindle top: unexpected argument '%s'\n", a.c_str());
      return usage();
    }
  }
  if (target.empty()) return usage();
  Top top(target);
  int rows, cols;
  if (once) {
    window(&rows, &cols);
    std::string f = top.frame(rows > 60 ? rows : 60, cols > 200 ? cols : 200, false);
    // Plain text: no cursor movement.
    std::string plain;
    for (std::size_t i = 0; i < f.size(); ++i) {
      if (f[i] == '\033') {
        while (i < f.size() && !isalpha(static_cast<unsigned char>(f[i]))) ++i;
        continue;
      }
      if (f[i] != '\r') plain += f[i];
    }
    put(plain + "\n");
    return plain.find("cannot read the stats") == std::string::npos ? 0 : 1;
  }

  struct sigaction sa {};
  sa.sa_handler = on_quit;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);
  termios saved{};
  bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
  if (tty) {
    termios raw = saved;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSANOW, &raw);
  }
  put("\033[?1049h\033[?25l\033[2J");  // the alternate screen, no cursor
  while (!g_quit) {
    window(&rows, &cols);
    put(top.frame(rows, cols));
    // Wait a second for a key; other keys just refresh sooner.
    double until = now_s() + 1.0;
    while (!g_quit) {
      int left = static_cast<int>((until - now_s()) * 1000);
      if (left <= 0) break;
      pollfd p{STDIN_FILENO, POLLIN, 0};
      int n = poll(&p, 1, left);
      if (n <= 0) continue;
      char c;
      ssize_t got = read(STDIN_FILENO, &c, 1);
      if (got == 0) {  // stdin closed: nothing can quit us but a signal; keep refreshing
        usleep(static_cast<useconds_t>(left) * 1000);
        break;
      }
      if (got == 1 && (c == 'q' || c == 'Q')) g_quit = 1;
    }
  }
  put("\033[?25h\033[?1049l");
  if (tty) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  return 0;
}

}  // namespace spindle::core
