#include "core/server.hh"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/config.hh"
#include "core/deploy.hh"
#include "core/lifecycle.hh"
#include "core/procname.hh"
#include "core/limits.hh"
#include "core/listener.hh"
#include "core/log.hh"
#include "core/log_master.hh"
#include "core/master.hh"
#include "core/options.hh"
#include "core/plugin.hh"
#include "core/worker.hh"

namespace spindle::core {

namespace {

// One line per refusal, all of them.
int usage_error(const std::string& lines) {
  std::size_t start = 0;
  while (start <= lines.size()) {
    std::size_t nl = lines.find('\n', start);
    if (nl == std::string::npos) nl = lines.size();
    fprintf(stderr, "spindle: %.*s\n", static_cast<int>(nl - start), lines.c_str() + start);
    start = nl + 1;
  }
  return 2;
}

// The uWSGI options that were given but do nothing here, one line each.
void log_fates(const OptionTable& table, const Config& cfg) {
  for (const std::string& n : table.notes()) log(Level::kWarn, "%s", n.c_str());
  for (const std::string& n : cfg.notes) log(Level::kInfo, "%s", n.c_str());
  for (const FateNote& n : table.fate_notes()) {
    std::string where = n.where.empty() ? std::string() : " (" + n.where + ")";
    if (n.fate == Fate::kNoEffect) {
      log(Level::kWarn, "--%s%s: no effect here: %s", n.name.c_str(), where.c_str(),
          n.why.c_str());
    } else {
      log(Level::kWarn, "--%s%s: not supported, ignored: it %s", n.name.c_str(), where.c_str(),
          n.why.c_str());
    }
  }
}

std::string engine_list(bool loops) {
  std::string out;
  for (Plugin* p : plugins()) {
    for (std::string_view n : loops ? p->loop_names() : p->suspend_names()) {
      if (!out.empty()) out += ", ";
      out += n;
    }
  }
  return out;
}

}  // namespace

int run_server(int argc, char** argv) {
  static Config cfg;
  log_master::adopt_after_exec();  // before anything is logged
  if (!plugins_error().empty()) {
    fprintf(stderr, "spindle: %s\n", plugins_error().c_str());
    return 1;
  }
  OptionTable table;
  add_core_options(table, cfg);
  for (Plugin* p : plugins()) {
    p->add_options(table);
    p->add_engine_options(table, cfg);
  }
  add_uwsgi_rows(table);

  std::string err;
  int rc = table.parse_args(argc, argv, &err, environ);
  if (rc == 1) {
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
      printf("\nloop engines: %s\nsuspend engines: %s\n", engine_list(true).c_str(),
             engine_list(false).c_str());
    return 0;
  }
  if (rc != 0) return usage_error(err);

  if (cfg.http_sockets.empty() && cfg.uwsgi_sockets.empty())
    return usage_error("no socket to serve: give --http-socket ADDR or --socket ADDR");
  if (!loop_provider(cfg.loop))
    return usage_error("--loop: no loop engine '" + cfg.loop + "' (available: " +
                       engine_list(true) + ")");
  std::string suspend = cfg.suspend.empty() ? "fibers" : cfg.suspend;
  Plugin* sp = suspend_provider(suspend);
  if (!sp)
    return usage_error("--suspend: no suspend engine '" + suspend + "' (available: " +
                       engine_list(false) + ")");
  if (sp && !sp->suspend_works_with(suspend, cfg.loop))
    return usage_error("--suspend: the '" + suspend + "' suspend engine cannot run under the '" +
                       cfg.loop + "' loop engine");
  std::string refusal = check_async_limits(cfg, suspend == "fibers");
  if (!refusal.empty()) return usage_error(refusal);

  if (cfg.threads > 1 && cfg.loop != "ev")
    return usage_error("--threads: the '" + cfg.loop + "' loop engine runs one loop per worker; "
                       "--threads needs --loop ev");
  if (cfg.threads > 1 && suspend != "fibers")
    return usage_error("--threads: the '" + suspend + "' suspend engine runs on one thread per "
                       "worker; --threads needs --fibers");

  // Log files first, so everything after lands in them (as uWSGI does).
  const bool check_only = getenv("SPINDLE_CHECK_ONLY") != nullptr;
  const bool reloading = getenv("SPINDLE_LISTEN_FDS") != nullptr;
  if (!cfg.umask.empty()) ::umask(static_cast<mode_t>(strtoul(cfg.umask.c_str(), nullptr, 8)));
  if (!cfg.daemonize.empty() && !check_only && !reloading) {
    std::string why = daemonize(cfg.daemonize, cfg.logfile_chmod);
    if (!why.empty()) return usage_error("--daemonize: " + why);
  } else if (!cfg.logto.empty() || !cfg.daemonize.empty()) {
    const std::string& file = cfg.logto.empty() ? cfg.daemonize : cfg.logto;
    std::string why = log_to_file(file, cfg.logfile_chmod);
    if (!why.empty()) return usage_error("--logto: " + why);
  }
  log_fates(table, cfg);
  if (!run_hooks(cfg.hook_asap, "hook-asap")) return 1;
  remember_start_dir();
  for (const std::string& kv : cfg.env) {
    std::size_t eq = kv.find('=');
    setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1);
  }
  if (!cfg.chdir.empty() && chdir(cfg.chdir.c_str()) < 0) {
    log(Level::kError, "--chdir %s: %s", cfg.chdir.c_str(), strerror(errno));
    return 1;
  }
  for (Plugin* p : plugins()) {
    std::string bad = p->check(cfg);
    if (!bad.empty()) return usage_error(bad);
  }
  signal(SIGPIPE, SIG_IGN);

  // A reload's trial run (see master.cc): load the app, bind nothing.
  if (check_only) {
    if (std::string why = drop_privileges(cfg.uid, cfg.gid); !why.empty()) {
      log(Level::kError, "%s", why.c_str());
      return 1;
    }
    for (Plugin* p : plugins())
      if (!p->master_init(cfg)) return 1;
    return 0;
  }

  SocketOptions so;
  so.chmod = cfg.chmod_socket;
  so.chown = cfg.chown_socket;
  so.abstract = cfg.abstract_socket;
  so.reuse_port = cfg.reuse_port;
  set_socket_options(so);
  std::vector<Listener> listeners;
  auto add_listener = [&](Proto proto, const std::string& spec) {
    Listener l;
    l.proto = proto;
    l.spec = spec;
    listeners.push_back(l);
  };
  for (const std::string& s : cfg.http_sockets) add_listener(Proto::kHttp, s);
  for (const std::string& s : cfg.uwsgi_sockets) add_listener(Proto::kUwsgi, s);
  std::string why;
  bool inherited = adopt_inherited_sockets(listeners, &why);
  if (!why.empty()) log(Level::kWarn, "reload: %s; binding anew", why.c_str());
  for (Listener& l : listeners) {
    if (!inherited) why = bind_listener(&l, cfg.listen);
    if (!inherited && !why.empty()) {
      log(Level::kError, "--%s %s: %s", proto_option(l.proto), l.spec.c_str(), why.c_str());
      return 1;
    }
    log(Level::kInfo, "bound %s %s%s", proto_option(l.proto), l.bound.c_str(),
        inherited ? " (inherited)" : "");
  }

  // Files written as root, then the change of user, then the app.
  std::vector<std::string> unix_paths;
  for (const Listener& l : listeners)
    if (l.unix_socket && !l.bound.empty() && l.bound.front() != '@') unix_paths.push_back(l.bound);
  auto fail = [&](const std::string& why) {
    log(Level::kError, "%s", why.c_str());
    if (cfg.vacuum) vacuum(cfg, unix_paths);
    return 1;
  };
  if (!cfg.pidfile.empty()) {
    if (std::string why = write_pidfile(cfg.pidfile, cfg.safe_pidfile); !why.empty())
      return fail("--pidfile: " + why);
  }
  if (!run_hooks(cfg.hook_as_root, "hook-as-root")) return fail("start-up stopped by a hook");
  if (std::string why = drop_privileges(cfg.uid, cfg.gid); !why.empty()) return fail(why);
  if (!run_hooks(cfg.hook_as_user, "hook-as-user")) return fail("start-up stopped by a hook");
  if (!cfg.uid.empty() || !cfg.gid.empty())
    log(Level::kInfo, "running as uid %d gid %d", static_cast<int>(getuid()),
        static_cast<int>(getgid()));
  if (!cfg.pidfile2.empty()) {
    if (std::string why = write_pidfile(cfg.pidfile2, cfg.safe_pidfile2); !why.empty())
      return fail("--pidfile2: " + why);
  }
  if (!cfg.logto2.empty()) {
    if (std::string why = log_to_file(cfg.logto2, cfg.logfile_chmod); !why.empty())
      return fail("--logto2: " + why);
  }

  if (!run_hooks(cfg.hook_pre_app, "hook-pre-app")) return fail("start-up stopped by a hook");
  for (Plugin* p : plugins()) {
    if (!p->master_init(cfg)) {
      log(Level::kError, "start-up failed in the %.*s plugin", static_cast<int>(p->name().size()),
          p->name().data());
      if (cfg.vacuum) vacuum(cfg, unix_paths);
      return 1;
    }
  }
  if (!run_hooks(cfg.hook_post_app, "hook-post-app")) return fail("start-up stopped by a hook");
  if (!cfg.daemonize2.empty() && !reloading) {
    if (std::string why = daemonize(cfg.daemonize2, cfg.logfile_chmod); !why.empty())
      return fail("--daemonize2: " + why);
    // The master has a new pid now.
    for (const std::string* p : {&cfg.pidfile, &cfg.pidfile2}) {
      if (p->empty()) continue;
      if (std::string why = write_pidfile(*p, false); !why.empty())
        log(Level::kWarn, "--daemonize2: %s", why.c_str());
    }
  }
  log(Level::kInfo, "master (pid %d): %d worker(s), %d async core(s) each, loop %s, suspend %s",
      static_cast<int>(getpid()), cfg.processes, cfg.async * cfg.threads, cfg.loop.c_str(),
      suspend.c_str());
  if (cfg.threads > 1)
    log(Level::kInfo, "threads: %d per worker, %d async core(s) each; enable-threads implied",
        cfg.threads, cfg.async);
  // The titles overwrite argv in place: the master keeps a copy for the
  // re-execution of a reload.
  static std::vector<std::string> saved(argv, argv + argc);
  static std::vector<char*> saved_argv;
  for (std::string& a : saved) saved_argv.push_back(a.data());
  saved_argv.push_back(nullptr);
  procname_init(argc, argv);
  set_procname(procname_for(cfg, 0));
  int status = run_master(cfg, listeners, saved_argv.data());
  if (cfg.vacuum) vacuum(cfg, unix_paths);
  return status;
}

}  // namespace spindle::core
