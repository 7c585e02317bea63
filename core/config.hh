// The server's settings after option parsing. Plugins keep their own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace spindle::core {

class OptionTable;

struct Config {
  std::vector<std::string> http_sockets;   // --http-socket ADDR (repeatable)
  std::vector<std::string> uwsgi_sockets;  // --socket ADDR (repeatable)
  int processes = 1;                       // --processes/-p
  bool master = true;                      // --master (always on; accepted)
  int listen = 1024;                       // --listen backlog
  std::uint64_t buffer_size = 8192;        // --buffer-size: max request head
  long max_requests = 0;                   // --max-requests (0: never recycle)
  double harakiri = 0;                     // --harakiri seconds (0: off)
  double http_timeout = 60;                // --http-timeout: head and keep-alive idle
  double socket_timeout = 30;              // --socket-timeout: parked body/response I/O
  std::uint64_t limit_post = 0;            // --limit-post (0: no limit)
  std::uint64_t post_buffering = 0;        // --post-buffering: body bytes read on the loop
  long websocket_max_kb = 1024;            // --websocket-max-size: largest message, KiB
  double websocket_ping_freq = 30;         // --websocket-ping-freq: idle seconds before a ping (0: off)
  double websocket_pong_tolerance = 3;     // --websocket-pong-tolerance: seconds a ping waits for an answer
  long websocket_send_buffer_kb = 256;     // --websocket-send-buffer: output queued per websocket, KiB
  bool websocket_deflate = false;          // --websocket-deflate: permessage-deflate when offered
  double body_timeout = 60;                // --body-timeout: total wait for a body (0: off)
  bool disable_logging = false;            // --disable-logging
  bool no_server_header = false;           // --no-server-header
  std::string loop = "ev";                 // --loop NAME
  int async = 1;                           // --async N cores per serving thread
  int threads = 1;                         // --threads N serving threads per worker
  std::string suspend;                     // --fibers / --greenlet / --suspend NAME
  // Reserved address space, not memory: only the pages a request touches
  // become resident. C-level recursion in CPython (map, json, ast) needs
  // room up to its recursion limit.
  std::uint64_t fiber_stack_size = 2 * 1024 * 1024;  // --fiber-stack-size
  double reload_mercy = 30;                // --worker-reload-mercy: graceful stop bound
  bool lazy_apps = false;                  // --lazy-apps: load apps in each worker
  std::string chdir;                       // --chdir DIR
  std::vector<std::string> env;            // --env NAME=VALUE
  std::vector<std::string> ini_files;      // --ini (for the record)
  std::string stats;                       // --stats ADDR (uWSGI's stats server)
  bool stats_http = false;                 // --stats-http: that socket speaks HTTP
  std::string metrics;                     // --metrics ADDR (Prometheus)
  // Static files (core/static_files.hh), served before the app.
  std::vector<std::string> static_maps;          // --static-map /url=DIR
  std::vector<std::string> static_maps2;         // --static-map2 /url=DIR
  std::vector<std::string> check_static;         // --check-static DIR
  std::vector<std::string> static_index;         // --static-index NAME
  std::vector<std::string> static_safe;          // --static-safe DIR
  std::vector<std::string> static_expires_type;  // --static-expires-type TYPE=SECONDS
  // Deployment (core/deploy.hh, core/listener.hh)
  std::string chmod_socket;                // --chmod-socket[=MODE] (bare: 666)
  std::string chown_socket;                // --chown-socket USER[:GROUP]
  std::string umask;                       // --umask MODE
  bool abstract_socket = false;            // --abstract-socket
  bool reuse_port = false;                 // --reuse-port
  bool vacuum = false;                     // --vacuum
  std::string uid, gid;                    // --uid, --gid (names or numbers)
  std::string pidfile, pidfile2;           // --pidfile (before --uid), --pidfile2 (after)
  bool safe_pidfile = false, safe_pidfile2 = false;
  std::string daemonize, daemonize2;       // --daemonize FILE (before binding / after app)
  std::string logto, logto2;               // --logto FILE (before --uid / after)
  std::string logfile_chmod;               // --logfile-chmod MODE
  // Lifecycle (core/lifecycle.hh)
  std::vector<std::string> hook_asap, hook_as_root, hook_as_user, hook_pre_app, hook_post_app,
      hook_master_start;                   // --hook-PHASE ACTION, --exec-PHASE CMD
  std::vector<std::string> attach_daemons; // --attach-daemon CMD
  std::vector<std::string> touch_reload;   // --touch-reload FILE
  long reload_on_rss = 0;                  // --reload-on-rss MB (graceful)
  long evil_reload_on_rss = 0;             // --evil-reload-on-rss MB (SIGKILL)
  long max_worker_lifetime = 0;            // --max-worker-lifetime SECONDS
  long max_worker_lifetime_delta = 0;      // + worker id * this
  long max_requests_delta = 0;             // --max-requests + worker id * this
  // Process titles (core/procname.hh)
  bool auto_procname = false;              // --auto-procname
  std::string procname, procname_master;   // --procname (workers), --procname-master
  std::string procname_prefix, procname_append;
  bool strict = false;                     // --strict
  std::vector<std::string> notes;          // logged at start-up (--print, master = false)
};

// The core rows of the option table, bound to cfg.
void add_core_options(OptionTable& table, Config& cfg);

}  // namespace spindle::core
