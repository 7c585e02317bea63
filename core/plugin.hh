// Embedded plugins.
//
// A plugin is compiled into the one spindle binary and listed in a static
// table that the Makefile generates from PLUGINS. It may add option rows,
// provide loop engines, suspend engines or the application, and hook the
// server's phases. Every hook has a do-nothing default.
//
// A plugin names the plugins it needs (depends_on()); the registry runs
// every hook of a plugin after those of the plugins it needs, whatever the
// PLUGINS order, and a binary built without a needed plugin refuses to start
// with one line naming both. No plugin asks for another by name otherwise.
// The native fibers suspend engine is registered the same way, by core.
//
// Phases, in order
//   add_options,         before parsing the command line
//   add_engine_options
//   check                options parsed, --chdir done: a non-empty answer is
//                        a bad option (one line, exit status 2)
//   master_init          options parsed, sockets bound, before any fork
//                        (load the app here so workers share its memory)
//   post_fork            in each new worker, first thing after fork
//   worker_start         thread 0's loop and cores exist, before it runs
//                        (app post-fork hooks run here)
//   thread_start         on each other serving thread (--threads), on that
//                        thread, once its loop and cores exist
//   thread_stop          on every serving thread, on that thread, once its
//                        loop has stopped (let go of the interpreter lock)
//   worker_stop          every serving thread has stopped; on thread 0,
//                        before the worker exits
// A hook returns false to refuse start-up; it has logged why.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/exchange.hh"
#include "core/loop.hh"
#include "fibers/suspend.hh"

namespace spindle::core {

struct Config;
class OptionTable;

// The application: called on an async core for every request.
class App {
 public:
  virtual ~App() = default;
  virtual void handle(Exchange& ex) = 0;
};

class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual std::string_view name() const = 0;
  // The plugins whose hooks must run before this one's (by name).
  virtual std::vector<std::string_view> depends_on() const { return {}; }

  virtual void add_options(OptionTable&) {}
  // For options that choose engines or core settings (--tornado N, --greenlet):
  // their setters may write the core's Config.
  virtual void add_engine_options(OptionTable&, Config&) {}
  // Checks what needs the file system (paths, a virtualenv's version) once
  // --chdir applied: "" when fine, else one line naming the option.
  virtual std::string check(const Config&) { return {}; }
  virtual bool master_init(const Config&) { return true; }
  virtual bool post_fork(const Config&, int /*worker_id*/) { return true; }
  virtual bool worker_start(const Config&, Loop&, fibers::Engine&) { return true; }
  virtual bool thread_start(const Config&, Loop&, fibers::Engine&, int /*thread*/) {
    return true;
  }
  virtual void thread_stop() {}
  virtual void worker_stop() {}

  // Engines this plugin provides, by name ("ev", "tornado"; "fibers", "greenlet").
  virtual std::vector<std::string_view> loop_names() const { return {}; }
  virtual std::unique_ptr<Loop> make_loop(std::string_view) { return nullptr; }
  virtual std::vector<std::string_view> suspend_names() const { return {}; }
  virtual std::unique_ptr<fibers::Engine> make_suspend(std::string_view, const Config&) {
    return nullptr;
  }
  // Whether this plugin's suspend engine can run under the named loop engine.
  virtual bool suspend_works_with(std::string_view /*suspend*/, std::string_view /*loop*/) const {
    return true;
  }

  // The application, once master_init loaded it (nullptr if none).
  virtual App* app() { return nullptr; }
};

// The plugins, each after the ones it depends on (core/plugin_registry.cc);
// ties keep the built-in fibers engine first, then the PLUGINS order.
const std::vector<Plugin*>& plugins();

// Empty, or why the plugin set cannot run (a missing or circular
// dependency), in one line. run_server() refuses to start then.
const std::string& plugins_error();

// Orders `in` so that each plugin follows those it depends on, stable
// otherwise. Returns "" or the reason it cannot (for plugins_error()).
std::string order_plugins(const std::vector<Plugin*>& in, std::vector<Plugin*>* out);

// The embedded plugins in PLUGINS order (generated build/plugins.cc).
const std::vector<Plugin*>& built_plugins();

}  // namespace spindle::core
