#include "core/stats_server.hh"

#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/log.hh"
#include "core/stats_report.hh"
#include "core/worker_slot.hh"

namespace spindle::core {

namespace {

enum class Kind { kStats, kMetrics };

struct Client {
  int fd = -1;
  Kind kind = Kind::kStats;
  bool http = false;
  bool writing = false;
  std::string in;
  std::string out;
  std::size_t sent = 0;
  std::int64_t deadline_ms = 0;
};

struct Socket {
  Listener l;
  Kind kind;
  bool http;
};

constexpr std::size_t kMaxClients = 64;
constexpr std::size_t kMaxRequest = 8192;
constexpr std::int64_t kClientMs = 5000;

struct StatsServer {
  std::vector<Socket> sockets;
  std::vector<Client> clients;
  const std::vector<Listener>* app_listeners = nullptr;
  int sigfd = -1;
};

StatsServer g_server;

std::string body_for(Kind kind) {
  return kind == Kind::kMetrics ? stats::metrics(*g_server.app_listeners)
                                : stats::json(*g_server.app_listeners);
}

void respond_http(Client& c) {
  // Only the request line matters: "GET /path HTTP/1.x".
  std::string_view req = c.in;
  std::size_t sp1 = req.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : req.find(' ', sp1 + 1);
  std::string_view method = req.substr(0, sp1);
  std::string_view path =
      sp2 == std::string_view::npos ? std::string_view("/") : req.substr(sp1 + 1, sp2 - sp1 - 1);
  const char* status = "200 OK";
  std::string body;
  const char* type = "application/json";
  if (method != "GET" && method != "HEAD") {
    status = "405 Method Not Allowed";
    body = "405 Method Not Allowed\n";
    type = "text/plain";
  } else {
    Kind kind = c.kind;
    if (kind == Kind::kStats && path.substr(0, 8) == "/metrics") kind = Kind::kMetrics;
    body = body_for(kind);
    if (kind == Kind::kMetrics) type = "text/plain; version=0.0.4; charset=utf-8";
  }
  c.out = "HTTP/1.0 ";
  c.out += status;
  c.out += "\r\nContent-Type: ";
  c.out += type;
  c.out += "\r\nContent-Length: " + std::to_string(body.size());
  c.out += "\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n";
  if (method != "HEAD") c.out += body;
  c.writing = true;
}

// Returns false when the client is done (answered, gone or out of time).
bool serve(Client& c, short revents) {
  if (!c.writing && (revents & (POLLIN | POLLHUP | POLLERR))) {
    char buf[2048];
    for (;;) {
      ssize_t n = ::read(c.fd, buf, sizeof buf);
      if (n > 0) {
        c.in.append(buf, static_cast<std::size_t>(n));
        if (c.in.size() > kMaxRequest) return false;
        continue;
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return false;
    }
    if (c.in.find("\r\n\r\n") != std::string::npos || c.in.find("\n\n") != std::string::npos)
      respond_http(c);
  }
  if (c.writing) {
    while (c.sent < c.out.size()) {
      ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return true;
      return false;
    }
    return false;  // all written
  }
  return true;
}

void accept_from(Socket& s) {
  for (int k = 0; k < 16; ++k) {
    int fd = accept4(s.l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (g_server.clients.size() >= kMaxClients) {
      ::close(fd);
      continue;
    }
    Client c;
    c.fd = fd;
    c.kind = s.kind;
    c.http = s.http;
    c.deadline_ms = monotonic_ms() + kClientMs;
    if (!c.http) {
      // uWSGI's stats server: the JSON goes out at once, nothing is read.
      c.out = body_for(c.kind);
      c.writing = true;
      if (!serve(c, POLLOUT)) {
        ::close(fd);
        continue;
      }
    }
    g_server.clients.push_back(std::move(c));
  }
}

bool bind_one(const std::string& spec, Kind kind, bool http, const char* what) {
  Socket s;
  s.l.spec = spec;
  // A raw stats client (uwsgitop, nc) sends nothing: the socket must not
  // defer the accept until data arrives, as HTTP sockets do.
  s.l.proto = http ? Proto::kHttp : Proto::kUwsgi;
  s.kind = kind;
  s.http = http;
  std::string why = bind_listener(&s.l, 128);
  if (!why.empty()) {
    log(Level::kError, "--%s %s: %s", what, spec.c_str(), why.c_str());
    return false;
  }
  log(Level::kInfo, "bound %s %s", what, s.l.bound.c_str());
  g_server.sockets.push_back(std::move(s));
  return true;
}

}  // namespace

bool start_stats_server(const Config& cfg, const std::vector<Listener>& app_listeners) {
  g_server.app_listeners = &app_listeners;
  if (!cfg.stats.empty() && !bind_one(cfg.stats, Kind::kStats, cfg.stats_http, "stats"))
    return false;
  if (!cfg.metrics.empty() && !bind_one(cfg.metrics, Kind::kMetrics, true, "metrics")) return false;
  return true;
}

void close_stats_server() {
  for (Socket& s : g_server.sockets) ::close(s.l.fd);
  for (Client& c : g_server.clients) ::close(c.fd);
  if (g_server.sigfd >= 0) ::close(g_server.sigfd);
  g_server.sockets.clear();
  g_server.clients.clear();
  g_server.sigfd = -1;
}

int master_wait(const sigset_t& signals, int timeout_ms) {
  if (g_server.sockets.empty()) {
    timespec tick{timeout_ms / 1000, (timeout_ms % 1000) * 1000L * 1000L};
    siginfo_t si;
    int sig = sigtimedwait(&signals, &si, &tick);
    return sig > 0 ? sig : 0;
  }
  if (g_server.sigfd < 0) g_server.sigfd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
  std::vector<pollfd> fds;
  fds.push_back({g_server.sigfd, POLLIN, 0});
  for (Socket& s : g_server.sockets) fds.push_back({s.l.fd, POLLIN, 0});
  for (Client& c : g_server.clients) fds.push_back({c.fd, short(c.writing ? POLLOUT : POLLIN), 0});
  int n = poll(fds.data(), fds.size(), timeout_ms);
  if (n < 0) return 0;
  std::size_t i = 1;
  for (Socket& s : g_server.sockets)
    if (fds[i++].revents) accept_from(s);
  // Clients accepted just now are past the end of fds: they were served once
  // already and wait for the next round.
  std::int64_t now = monotonic_ms();
  std::size_t polled = fds.size() - i;
  std::vector<Client> keep;
  for (std::size_t k = 0; k < g_server.clients.size(); ++k) {
    Client& c = g_server.clients[k];
    short rev = k < polled ? fds[i + k].revents : 0;
    bool alive = (rev == 0 || serve(c, rev)) && now < c.deadline_ms;
    if (alive) {
      keep.push_back(std::move(c));
    } else {
      ::close(c.fd);
    }
  }
  g_server.clients = std::move(keep);
  if (fds[0].revents & POLLIN) {
    signalfd_siginfo si;
    if (::read(g_server.sigfd, &si, sizeof si) == sizeof si) return static_cast<int>(si.ssi_signo);
  }
  return 0;
}

}  // namespace spindle::core
