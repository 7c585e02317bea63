// Listening sockets: parsed from --http-socket / --socket, bound by the
// master before any fork and shared by every worker.
#pragma once

#include <string>
#include <vector>

namespace spindle::core {

enum class Proto { kHttp, kUwsgi };

struct Listener {
  Proto proto = Proto::kHttp;
  std::string spec;         // as given on the command line
  std::string bound;        // the real address after bind (port 0 resolved)
  std::string server_name;  // SERVER_NAME for requests on this socket
  std::string server_port;  // SERVER_PORT
  bool unix_socket = false;
  int fd = -1;
};

// How the server's sockets are bound (--chmod-socket, --chown-socket,
// --abstract-socket, --reuse-port). Set once before binding; the stats
// socket binds with the defaults.
struct SocketOptions {
  std::string chmod;          // octal mode for unix sockets ("" = leave)
  std::string chown;          // USER[:GROUP] for unix sockets ("" = leave)
  bool abstract = false;      // bind unix paths in the abstract namespace
  bool reuse_port = false;    // SO_REUSEPORT on TCP sockets
};
void set_socket_options(const SocketOptions& o);

// Checks an address as an option is read: a port must be a number from 0
// (any free port) to 65535. Returns "" or the reason.
std::string check_address(const std::string& spec);

// Binds and listens on spec ("host:port", ":port", "[v6]:port", or a unix
// socket path: anything without ':' or starting with "unix:"). Returns an
// empty string on success, else the reason.
std::string bind_listener(Listener* l, int backlog);

// Fills bound/server_name/server_port of an open listening fd (bound here or
// inherited across a reload). host: as given on the command line, or "".
void describe_listener(Listener* l, const std::string& host);
std::string listener_host(const std::string& spec);

const char* proto_option(Proto p);  // "http-socket" / "socket"

}  // namespace spindle::core
