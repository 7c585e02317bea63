#include "core/listener.hh"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <grp.h>
#include <pwd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace spindle::core {

const char* proto_option(Proto p) { return p == Proto::kHttp ? "http-socket" : "socket"; }

namespace {

SocketOptions g_options;

std::string errno_text(const char* what) { return std::string(what) + ": " + strerror(errno); }

// USER[:GROUP] (names or numbers) -> ids; -1 leaves one unchanged.
std::string owner_ids(const std::string& spec, uid_t* uid, gid_t* gid) {
  std::string user = spec.substr(0, spec.find(':'));
  std::string grp_name =
      spec.find(':') == std::string::npos ? "" : spec.substr(spec.find(':') + 1);
  *uid = static_cast<uid_t>(-1);
  *gid = static_cast<gid_t>(-1);
  if (!user.empty()) {
    if (user.find_first_not_of("0123456789") == std::string::npos) {
      *uid = static_cast<uid_t>(std::stoul(user));
    } else if (passwd* pw = getpwnam(user.c_str())) {
      *uid = pw->pw_uid;
      if (grp_name.empty()) *gid = pw->pw_gid;
    } else {
      return "no user '" + user + "'";
    }
  }
  if (!grp_name.empty()) {
    if (grp_name.find_first_not_of("0123456789") == std::string::npos) {
      *gid = static_cast<gid_t>(std::stoul(grp_name));
    } else if (struct group* gr = getgrnam(grp_name.c_str())) {
      *gid = gr->gr_gid;
    } else {
      return "no group '" + grp_name + "'";
    }
  }
  return "";
}

std::string bind_unix(Listener* l, std::string path, int backlog) {
  sockaddr_un sa{};
  // "@name" (or any path with --abstract-socket) lives in Linux's abstract
  // namespace: no file, nothing to clean up, no permissions.
  bool abstract = !path.empty() && (path.front() == '@' || g_options.abstract);
  if (abstract && path.front() == '@') path.erase(0, 1);
  if (path.size() >= sizeof sa.sun_path - 1) return "unix socket path too long";
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path + (abstract ? 1 : 0), path.c_str(), path.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno_text("socket");
  // A stale socket file from a previous run would make bind fail; remove it
  // only if it is a socket (never an ordinary file).
  struct stat st;
  if (!abstract && lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) < 0 || listen(fd, backlog) < 0) {
    std::string why = errno_text("bind");
    close(fd);
    return why;
  }
  l->fd = fd;
  if (!abstract && !g_options.chmod.empty()) {
    mode_t mode = static_cast<mode_t>(std::strtoul(g_options.chmod.c_str(), nullptr, 8));
    if (chmod(path.c_str(), mode) < 0) return errno_text("chmod-socket");
  }
  if (!abstract && !g_options.chown.empty()) {
    uid_t uid;
    gid_t gid;
    std::string why = owner_ids(g_options.chown, &uid, &gid);
    if (!why.empty()) return "chown-socket: " + why;
    if (chown(path.c_str(), uid, gid) < 0) return errno_text("chown-socket");
  }
  describe_listener(l, "");
  return "";
}

}  // namespace

void set_socket_options(const SocketOptions& o) { g_options = o; }

std::string check_address(const std::string& spec) {
  if (spec.rfind("unix:", 0) == 0 || spec.front() == '@') return "";
  std::size_t colon = spec.rfind(':');
  if (colon == std::string::npos) return "";  // a unix socket path
  std::string port = spec.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stol(port) > 65535) {
    return "expected a port from 1 to 65535 (or 0 for any free port) in '" + spec + "'";
  }
  return "";
}

void describe_listener(Listener* l, const std::string& host) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(l->fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (ss.ss_family == AF_UNIX) {
    auto* sun = reinterpret_cast<sockaddr_un*>(&ss);
    l->unix_socket = true;
    if (sun->sun_path[0] == '\0' && len > offsetof(sockaddr_un, sun_path) + 1) {
      l->bound = "@" + std::string(sun->sun_path + 1, len - offsetof(sockaddr_un, sun_path) - 1);
    } else {
      l->bound = sun->sun_path;
    }
    l->server_name = l->bound;
    l->server_port = "";
    return;
  }
  char addr[INET6_ADDRSTRLEN] = "";
  int real_port = 0;
  if (ss.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof addr);
    real_port = ntohs(sin->sin_port);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof addr);
    real_port = ntohs(sin6->sin6_port);
  }
  l->server_port = std::to_string(real_port);
  l->server_name = host.empty() ? std::string(addr) : host;
  l->bound = (ss.ss_family == AF_INET6 ? "[" + std::string(addr) + "]" : std::string(addr)) +
             ":" + l->server_port;
}

std::string listener_host(const std::string& spec) {
  std::size_t colon = spec.rfind(':');
  if (spec.rfind("unix:", 0) == 0 || colon == std::string::npos) return "";
  std::string host = spec.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return host;
}

std::string bind_listener(Listener* l, int backlog) {
  std::string spec = l->spec;
  if (!spec.empty() && spec.front() == '@') return bind_unix(l, spec, backlog);
  if (spec.rfind("unix:", 0) == 0) return bind_unix(l, spec.substr(5), backlog);
  std::size_t colon = spec.rfind(':');
  if (colon == std::string::npos) return bind_unix(l, spec, backlog);

  std::string host = spec.substr(0, colon);
  std::string port = spec.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos)
    return "invalid port in '" + spec + "'";

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) return "cannot resolve '" + host + "': " + gai_strerror(rc);

  std::string why = "no usable address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      why = errno_text("socket");
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (g_options.reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (l->proto == Proto::kHttp) {
      // Wake the worker only once the request's first bytes are in: the
      // accept and the first read then happen in one loop callback.
      int secs = 5;
      setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof secs);
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
      why = errno_text("bind");
      close(fd);
      continue;
    }
    l->fd = fd;
    describe_listener(l, host);
    freeaddrinfo(res);
    return "";
  }
  freeaddrinfo(res);
  return why;
}

}  // namespace spindle::core
