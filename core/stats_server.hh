// The master's stats and metrics sockets, served from the master's own wait
// loop: a client never makes a worker wait, and a slow client never makes
// the master wait (every socket is non-blocking, every client has a
// deadline).
//
//   --stats ADDR         uWSGI's stats server: the JSON is written at once to
//                        whoever connects, then the connection closes
//   --stats ADDR --stats-http
//                        the same socket speaks HTTP/1.0: GET /metrics gives
//                        the Prometheus text, any other path the JSON
//   --metrics ADDR       an HTTP socket for Prometheus (any path)
#pragma once

#include <signal.h>

#include <vector>

#include "core/config.hh"
#include "core/listener.hh"

namespace spindle::core {

// Binds the sockets the options ask for and logs "bound stats ADDR" /
// "bound metrics ADDR". False (logged) if one cannot be bound.
bool start_stats_server(const Config& cfg, const std::vector<Listener>& app_listeners);

// In a new worker: closes the master's stats sockets and clients.
void close_stats_server();

// The master's wait: returns the number of a signal in `signals` (which the
// caller keeps blocked) or 0 once timeout_ms passed or a client was served.
int master_wait(const sigset_t& signals, int timeout_ms);

}  // namespace spindle::core
