#include "core/config.hh"

#include <cstdlib>
#include <initializer_list>
#include <string>

#include "core/access_log.hh"
#include "core/listener.hh"
#include "core/options.hh"

namespace spindle::core {

namespace {

// A size with bounds: a 0-byte request buffer or fiber stack would only fail
// later and far from the option that caused it.
Setter size_in(std::uint64_t& target, std::uint64_t min, std::uint64_t max, std::string range) {
  return [&target, min, max, range](std::string_view v) -> std::string {
    std::uint64_t n = 0;
    std::string reason = OptionTable::size(n)(v);
    if (!reason.empty()) return reason;
    if (n < min || n > max) {
      return "expected a size from " + range + ", got '" + std::string(v) + "'";
    }
    target = n;
    return {};
  };
}

// A socket address, checked as it is read: a port out of range is a bad
// option (exit 2), not a bind to whatever the number wraps to.
Setter address_list(std::vector<std::string>& target) {
  return [&target](std::string_view v) -> std::string {
    if (v.empty()) return "expected a value, got an empty string";
    std::string why = check_address(std::string(v));
    if (!why.empty()) return why;
    target.emplace_back(v);
    return {};
  };
}

}  // namespace

void add_core_options(OptionTable& t, Config& cfg) {
  using T = OptionTable;

  // --- sockets ---------------------------------------------------------------
  t.add({"http-socket", 0, true, "ADDR", "serve HTTP/1.1 on ADDR (host:port, :port or a unix path)",
         address_list(cfg.http_sockets), true});
  // uWSGI's --http starts a router process in front of the workers; here the
  // workers serve HTTP themselves, so it is --http-socket.
  t.add({"http", 0, true, "ADDR",
         "same as --http-socket: the workers serve HTTP themselves (no router process)",
         address_list(cfg.http_sockets), true});
  t.add({"http11-socket", 0, true, "ADDR",
         "same as --http-socket (HTTP/1.1 with keep-alive is always on)",
         address_list(cfg.http_sockets), true});
  t.add({"socket", 's', true, "ADDR", "serve the uwsgi protocol (nginx uwsgi_pass) on ADDR",
         address_list(cfg.uwsgi_sockets), true});
  t.add({"uwsgi-socket", 0, true, "ADDR", "same as --socket", address_list(cfg.uwsgi_sockets), true});
  t.add({"listen", 'l', true, "N", "listen backlog of every socket",
         T::integer(cfg.listen, 1, 65535)});

  // --- processes -------------------------------------------------------------
  t.add({"processes", 'p', true, "N", "number of worker processes",
         T::integer(cfg.processes, 1, 1024)});
  t.add({"workers", 0, true, "N", "same as --processes", T::integer(cfg.processes, 1, 1024)});
  // The master is how workers are respawned and reloaded, so there is no
  // mode without one; uWSGI files say "master = true" and that is fine.
  t.add({"master", 'M', false, "", "run a master process (always on; false is noted and ignored)",
         [&cfg](std::string_view v) -> std::string {
           if (v == "false")
             cfg.notes.push_back("master = false: spindle always runs a master process, which "
                                 "respawns and reloads the workers");
           cfg.master = true;
           return {};
         }});
  t.add({"max-requests", 'R', true, "N", "recycle a worker after N requests (0: never)",
         T::integer(cfg.max_requests, 0, 1000000000000L)});
  t.add({"harakiri", 't', true, "SECONDS", "kill a worker stuck in one request this long (0: off)",
         T::seconds(cfg.harakiri)});
  t.add({"lazy-apps", 0, false, "",
         "load the apps in each worker after fork; SIGHUP then replaces workers one by one",
         T::flag(cfg.lazy_apps)});
  t.add({"worker-reload-mercy", 0, true, "SECONDS",
         "how long a graceful stop waits for busy workers", T::seconds(cfg.reload_mercy)});
  t.add({"reload-mercy", 0, true, "SECONDS", "same as --worker-reload-mercy",
         T::seconds(cfg.reload_mercy)});

  // --- requests --------------------------------------------------------------
  t.add({"buffer-size", 'b', true, "SIZE", "largest request head (request line and headers)",
         size_in(cfg.buffer_size, 1024, 64ull << 20, "1k to 64M")});
  t.add({"http-timeout", 0, true, "SECONDS",
         "wait this long for a request head or on an idle keep-alive",
         T::seconds(cfg.http_timeout)});
  t.add({"socket-timeout", 0, true, "SECONDS",
         "wait this long reading a body or writing a response", T::seconds(cfg.socket_timeout)});
  t.add({"limit-post", 0, true, "SIZE", "refuse request bodies larger than SIZE (0: no limit)",
         T::size(cfg.limit_post)});
  t.add({"post-buffering", 0, true, "SIZE",
         "read up to SIZE bytes of a request body before an async core takes the request",
         T::size(cfg.post_buffering)});
  t.add({"body-timeout", 0, true, "SECONDS",
         "answer 408 once a request has waited this long in all for its body (0: no limit)",
         T::seconds(cfg.body_timeout)});
  t.add({"websocket-max-size", 0, true, "KB",
         "close a websocket (1009) whose message exceeds KB kibibytes (0: no limit)",
         T::integer(cfg.websocket_max_kb, 0, 1L << 30)});
  t.add({"websockets-max-size", 0, true, "KB", "same as --websocket-max-size",
         T::integer(cfg.websocket_max_kb, 0, 1L << 30)});
  t.add({"websocket-ping-freq", 0, true, "SECONDS",
         "ping a websocket the client has left silent this long (0: never)",
         T::seconds(cfg.websocket_ping_freq)});
  t.add({"websockets-ping-freq", 0, true, "SECONDS", "same as --websocket-ping-freq",
         T::seconds(cfg.websocket_ping_freq)});
  t.add({"websocket-pong-tolerance", 0, true, "SECONDS",
         "close a websocket that sent nothing this long after a ping",
         T::seconds(cfg.websocket_pong_tolerance)});
  t.add({"websockets-pong-tolerance", 0, true, "SECONDS", "same as --websocket-pong-tolerance",
         T::seconds(cfg.websocket_pong_tolerance)});
  t.add({"websocket-send-buffer", 0, true, "KB",
         "close a websocket whose client leaves more than KB kibibytes unread while other "
         "requests send to it",
         T::integer(cfg.websocket_send_buffer_kb, 1, 1L << 30)});
  t.add({"websocket-deflate", 0, false, "",
         "compress websocket messages (permessage-deflate) for clients that offer it",
         T::flag(cfg.websocket_deflate)});
  t.add({"disable-logging", 'L', false, "", "do not write the access log",
         T::flag(cfg.disable_logging)});
  t.add({"no-server-header", 0, false, "", "do not send the Server: spindle response header",
         T::flag(cfg.no_server_header)});
  add_log_options(t);

  // --- engines ---------------------------------------------------------------
  t.add({"loop", 0, true, "NAME", "loop engine (default: ev)", T::text(cfg.loop)});
  t.add({"async", 0, true, "N", "async cores (concurrent requests) per worker thread",
         T::integer(cfg.async, 1, 1000000)});
  t.add({"threads", 0, true, "N", "serving threads per worker, each with its own loop and "
         "--async cores (implies enable-threads)", T::integer(cfg.threads, 1, 256)});
  t.add({"fibers", 0, false, "", "run async cores on fibers (same as --suspend fibers)",
         [&cfg](std::string_view v) -> std::string {
           if (v == "true") {
             cfg.suspend = "fibers";
           } else if (cfg.suspend == "fibers") {
             // "fibers = false" undoes only itself, not another engine's choice.
             cfg.suspend.clear();
           }
           return {};
         }});
  t.add({"suspend", 0, true, "NAME", "suspend engine for the async cores (fibers, greenlet)",
         T::text(cfg.suspend)});
  t.add({"fiber-stack-size", 0, true, "SIZE", "stack reserved for each fiber",
         size_in(cfg.fiber_stack_size, 16 * 1024, 1ull << 30, "16k to 1G")});

  // --- observing (core/stats_server.hh) -------------------------------------
  t.add({"stats", 0, true, "ADDR", "serve uWSGI's stats JSON on ADDR (uwsgitop, spindle top)",
         T::text(cfg.stats)});
  t.add({"stats-server", 0, true, "ADDR", "same as --stats", T::text(cfg.stats)});
  t.add({"stats-http", 0, false, "", "the stats socket speaks HTTP (GET /metrics: Prometheus)",
         T::flag(cfg.stats_http)});
  t.add({"stats-minified", 0, false, "", "accepted for uWSGI compatibility (always minified)",
         T::ignored()});
  t.add({"metrics", 0, true, "ADDR", "serve Prometheus metrics over HTTP on ADDR",
         T::text(cfg.metrics)});

  // --- static files ----------------------------------------------------------
  auto mapping = [](std::vector<std::string>& target) -> Setter {
    return [&target](std::string_view v) -> std::string {
      std::size_t eq = v.find('=');
      if (eq == std::string_view::npos || eq + 1 == v.size() || v.empty() || v[0] != '/')
        return "expected /URL=DIR, got '" + std::string(v) + "'";
      target.emplace_back(v);
      return {};
    };
  };
  t.add({"static-map", 0, true, "/URL=DIR",
         "serve the files of DIR at /URL before the app (repeatable)", mapping(cfg.static_maps),
         true});
  t.add({"static-map2", 0, true, "/URL=DIR",
         "like --static-map, but the whole path is looked up in DIR (repeatable)",
         mapping(cfg.static_maps2), true});
  t.add({"check-static", 0, true, "DIR", "serve DIR + the request's path if it is a file "
         "(repeatable)", T::list(cfg.check_static), true});
  t.add({"static-check", 0, true, "DIR", "same as --check-static", T::list(cfg.check_static),
         true});
  t.add({"static-index", 0, true, "NAME",
         "for a directory, serve the first of these files that exists (repeatable)",
         T::list(cfg.static_index), true});
  t.add({"static-safe", 0, true, "DIR",
         "static files may be symlinks to files under DIR (repeatable)",
         T::list(cfg.static_safe), true});
  t.add({"static-expires-type", 0, true, "TYPE=SECONDS",
         "static files of this MIME type get Expires: now + SECONDS (repeatable)",
         [&cfg](std::string_view v) -> std::string {
           std::size_t eq = v.find('=');
           long n = 0;
           if (eq == std::string_view::npos || eq == 0 ||
               v.find_first_not_of("0123456789", eq + 1) != std::string_view::npos ||
               eq + 1 == v.size() || (n = std::atol(std::string(v.substr(eq + 1)).c_str())) < 0)
             return "expected TYPE=SECONDS like text/css=3600, got '" + std::string(v) + "'";
           cfg.static_expires_type.emplace_back(v);
           return {};
         },
         true});

  // --- environment -----------------------------------------------------------
  t.add({"chdir", 0, true, "DIR", "change to DIR before loading the app", T::text(cfg.chdir)});
  t.add({"env", 0, true, "NAME=VALUE", "set an environment variable for the app",
         [&cfg](std::string_view v) -> std::string {
           std::size_t eq = v.find('=');
           if (eq == std::string_view::npos || eq == 0) {
             return "expected NAME=VALUE, got '" + std::string(v) + "'";
           }
           cfg.env.emplace_back(v);
           return {};
         },
         true});
  // The table itself reads the file; this row records which files were read.
  t.add({"ini", 0, true, "FILE", "read FILE[:SECTION] (default: its [uwsgi] and [spindle] sections)",
         T::list(cfg.ini_files), true});

  // --- deployment ------------------------------------------------------------
  auto octal = [](std::string& target) -> Setter {
    return [&target](std::string_view v) -> std::string {
      if (v.empty() || v.size() > 4 || v.find_first_not_of("01234567") != std::string_view::npos)
        return "expected an octal mode like 660, got '" + std::string(v) + "'";
      target.assign(v);
      return {};
    };
  };
  {
    OptionDef chmod_row{"chmod-socket", 'C', true, "MODE",
                        "change the unix sockets' mode (bare: 666), e.g. for nginx's workers",
                        octal(cfg.chmod_socket)};
    chmod_row.optional_value = true;
    chmod_row.implicit = "666";
    t.add(chmod_row);
    chmod_row.name = "chmod";
    chmod_row.short_name = 0;
    chmod_row.help = "same as --chmod-socket";
    t.add(chmod_row);
  }
  t.add({"chown-socket", 0, true, "USER[:GROUP]",
         "change the unix sockets' owner (before --uid drops privileges)",
         T::text(cfg.chown_socket)});
  t.add({"umask", 0, true, "MODE", "set the umask before binding and writing files",
         octal(cfg.umask)});
  t.add({"abstract-socket", 'a', false, "", "bind unix sockets in Linux's abstract namespace "
         "(also: an address starting with @)", T::flag(cfg.abstract_socket)});
  t.add({"reuse-port", 0, false, "", "set SO_REUSEPORT on TCP sockets", T::flag(cfg.reuse_port)});
  t.add({"vacuum", 0, false, "", "remove the unix socket files and the pidfiles at exit",
         T::flag(cfg.vacuum)});
  t.add({"uid", 0, true, "USER", "run as USER (name or number) once the sockets are bound, "
         "before the app loads", T::text(cfg.uid)});
  t.add({"gid", 0, true, "GROUP", "run as GROUP (name or number), as --uid",
         T::text(cfg.gid)});
  t.add({"pidfile", 0, true, "FILE", "write the master's pid to FILE (before --uid)",
         T::text(cfg.pidfile)});
  t.add({"pidfile2", 0, true, "FILE", "write the master's pid to FILE (after --uid)",
         T::text(cfg.pidfile2)});
  t.add({"safe-pidfile", 0, true, "FILE", "as --pidfile, written whole (temporary file + rename)",
         [&cfg](std::string_view v) -> std::string {
           cfg.pidfile.assign(v);
           cfg.safe_pidfile = true;
           return {};
         }});
  t.add({"safe-pidfile2", 0, true, "FILE", "as --pidfile2, written whole",
         [&cfg](std::string_view v) -> std::string {
           cfg.pidfile2.assign(v);
           cfg.safe_pidfile2 = true;
           return {};
         }});
  t.add({"daemonize", 'd', true, "LOGFILE", "detach from the terminal and log to LOGFILE",
         T::text(cfg.daemonize)});
  t.add({"daemonize2", 0, true, "LOGFILE",
         "detach once the app is loaded and log to LOGFILE", T::text(cfg.daemonize2)});
  t.add({"logto", 0, true, "FILE", "log to FILE (appended) instead of stderr",
         T::text(cfg.logto)});
  t.add({"logto2", 0, true, "FILE", "as --logto, opened after --uid", T::text(cfg.logto2)});
  t.add({"logfile-chmod", 0, true, "MODE", "mode of the log file", octal(cfg.logfile_chmod)});

  // --- lifecycle -------------------------------------------------------------
  struct Hook {
    const char* phase;
    std::vector<std::string>* list;
    const char* when;
  };
  for (const Hook& h : std::initializer_list<Hook>{
           {"asap", &cfg.hook_asap, "as soon as the options are read"},
           {"as-root", &cfg.hook_as_root, "before --uid/--gid drop privileges"},
           {"as-user", &cfg.hook_as_user, "after --uid/--gid dropped privileges"},
           {"pre-app", &cfg.hook_pre_app, "before the app is loaded"},
           {"post-app", &cfg.hook_post_app, "after the app is loaded"},
           {"master-start", &cfg.hook_master_start, "when the master starts, before the workers"}}) {
    std::vector<std::string>* list = h.list;
    t.add({std::string("hook-") + h.phase, 0, true, "ACTION",
           std::string("run ACTION (exec:CMD, print:TEXT, mkdir:DIR, unlink:FILE, write:FILE TEXT) ") +
               h.when,
           T::list(*list), true});
    if (std::string(h.phase) != "master-start") {
      t.add({std::string("exec-") + h.phase, 0, true, "CMD",
             std::string("run CMD through /bin/sh ") + h.when + " (a failure stops start-up)",
             [list](std::string_view v) -> std::string {
               list->push_back("exec:" + std::string(v));
               return {};
             },
             true});
    }
  }
  t.add({"attach-daemon", 0, true, "CMD",
         "run CMD (through /bin/sh) beside the workers; the master respawns it when it exits "
         "and stops it with the server",
         T::list(cfg.attach_daemons), true});
  t.add({"touch-reload", 0, true, "FILE", "reload gracefully (as SIGHUP) when FILE's mtime changes",
         T::list(cfg.touch_reload), true});
  t.add({"reload-on-rss", 0, true, "MB", "recycle a worker gracefully once its RSS reaches MB",
         T::integer(cfg.reload_on_rss, 0, 1L << 30)});
  t.add({"evil-reload-on-rss", 0, true, "MB", "kill (SIGKILL) a worker whose RSS reaches MB",
         T::integer(cfg.evil_reload_on_rss, 0, 1L << 30)});
  t.add({"max-worker-lifetime", 0, true, "SECONDS", "recycle a worker gracefully after SECONDS",
         T::integer(cfg.max_worker_lifetime, 0, 1L << 40)});
  t.add({"max-worker-lifetime-delta", 0, true, "SECONDS",
         "add worker id * SECONDS to --max-worker-lifetime, so workers do not recycle together",
         T::integer(cfg.max_worker_lifetime_delta, 0, 1L << 30)});
  t.add({"max-requests-delta", 0, true, "N",
         "add worker id * N to --max-requests, so workers do not recycle together",
         T::integer(cfg.max_requests_delta, 0, 1L << 30)});

  // --- process titles ---------------------------------------------------------
  t.add({"auto-procname", 0, false, "",
         "name the processes 'spindle master' and 'spindle worker N' in ps",
         T::flag(cfg.auto_procname)});
  t.add({"procname", 0, true, "NAME", "the workers' title in ps", T::text(cfg.procname)});
  t.add({"procname-master", 0, true, "NAME", "the master's title in ps",
         T::text(cfg.procname_master)});
  t.add({"procname-prefix", 0, true, "PREFIX", "put PREFIX before every process title",
         T::text(cfg.procname_prefix)});
  t.add({"procname-prefix-spaced", 0, true, "PREFIX", "as --procname-prefix, with a space after",
         [&cfg](std::string_view v) -> std::string {
           cfg.procname_prefix = std::string(v) + " ";
           return {};
         }});
  t.add({"procname-append", 0, true, "TEXT", "put TEXT after every process title",
         T::text(cfg.procname_append)});

  // --- configuration ---------------------------------------------------------
  // The table reads --strict itself (anywhere in the configuration); the row
  // makes it an option like the others.
  t.add({"strict", 0, false, "",
         "refuse unknown keys and options spindle does not support, instead of warning",
         T::flag(cfg.strict)});
  // Read by the configuration reader itself (core/config_reader.hh); the rows
  // give them their place in --help and the option table.
  t.add({"set", 'S', true, "KEY=VALUE", "set an option or a placeholder", T::ignored(), true});
  t.add({"set-placeholder", 0, true, "KEY=VALUE", "set a placeholder for %(KEY) only",
         T::ignored(), true});
  t.add({"set-ph", 0, true, "KEY=VALUE", "same as --set-placeholder", T::ignored(), true});
  t.add({"include", 0, true, "FILE", "same as --ini for an .ini file", T::ignored(), true});
  t.add({"config", 0, true, "FILE", "same as --ini for an .ini file", T::ignored(), true});
  struct Logic {
    const char* name;
    const char* metavar;
    const char* help;
  };
  for (const Logic& l : std::initializer_list<Logic>{
           {"if-env", "VAR[=VALUE]", "read the keys up to endif if VAR is set (and equals VALUE)"},
           {"ifenv", "VAR[=VALUE]", "same as --if-env"},
           {"if-not-env", "VAR[=VALUE]", "read the keys up to endif unless VAR is set (to VALUE)"},
           {"if-opt", "KEY[=VALUE]", "read the keys up to endif if KEY was set (to VALUE)"},
           {"if-not-opt", "KEY[=VALUE]", "read the keys up to endif unless KEY was set"},
           {"if-exists", "PATH", "read the keys up to endif if PATH exists"},
           {"ifexists", "PATH", "same as --if-exists"},
           {"if-not-exists", "PATH", "read the keys up to endif unless PATH exists"},
           {"if-file", "PATH", "read the keys up to endif if PATH is a file"},
           {"if-not-file", "PATH", "read the keys up to endif unless PATH is a file"},
           {"if-dir", "PATH", "read the keys up to endif if PATH is a directory"},
           {"ifdir", "PATH", "same as --if-dir"},
           {"if-directory", "PATH", "same as --if-dir"},
           {"if-not-dir", "PATH", "read the keys up to endif unless PATH is a directory"},
           {"if-reload", "", "read the keys up to endif only on a reload"},
           {"if-not-reload", "", "read the keys up to endif except on a reload"},
           {"if-hostname", "NAME", "read the keys up to endif on host NAME"},
           {"if-not-hostname", "NAME", "read the keys up to endif except on host NAME"},
           {"if-plugin", "NAME", "read the keys up to endif if plugin NAME is built in"},
           {"ifplugin", "NAME", "same as --if-plugin"},
           {"if-not-plugin", "NAME", "read the keys up to endif unless plugin NAME is built in"},
           {"for", "WORDS", "repeat the keys up to endfor for each word, as %(_)"},
           {"for-glob", "PATTERN", "repeat the keys up to endfor for each matching path"},
           {"for-times", "N", "repeat the keys up to endfor N times (%(_) = 1..N)"},
           {"for-readline", "FILE", "repeat the keys up to endfor for each line of FILE"},
           {"else", "", "read the keys up to endif if the if before failed"},
           {"endif", "", "end an if block"},
           {"end-if", "", "same as --endif"},
           {"endfor", "", "end a for block"},
           {"end-for", "", "same as --endfor"},
           {"end", "", "end an if or for block"}}) {
    bool value = l.metavar[0] != 0;
    t.add({l.name, 0, value, l.metavar, l.help, T::ignored(), true});
  }
  t.add({"print", 0, true, "TEXT", "log TEXT at start-up (after the options are expanded)",
         T::list(cfg.notes), true});
  t.add({"iprint", 0, true, "TEXT", "same as --print", T::list(cfg.notes), true});
}

}  // namespace spindle::core
