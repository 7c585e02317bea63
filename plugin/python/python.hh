// The embedded CPython plugin: what its files share.
//
// Threading model (see DESIGN.md, "Python inside fibers", and the README's
// --threads)
//  - Each serving thread of a worker (--threads; one by default) runs its
//    own loop and cores. It holds the GIL except while its loop sleeps in
//    the kernel (the blocking hooks release it there, so the other serving
//    threads and threads the app starts run) and after its loop stopped.
//  - Every async core owns one PyThreadState, made on the core's own thread.
//    A switch into a core makes the core's state current; a switch out goes
//    back to the thread's main state (ThreadRuntime).
//  - Everything below is touched with the GIL held (loop callbacks, cores
//    and hooks all run with it), so none of it is locked; core slots are
//    indexed by core id, unique across the threads of a worker.

// Lifetime of what the app sees: the environ, wsgi.input, start_response and
// write() may outlive the request (an app can keep references). They point
// at a Request through a pointer that is cleared when handle() returns, after
// which they raise instead of touching a finished Exchange.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/exchange.hh"
#include "core/websocket.hh"
#include "core/loop.hh"

namespace spindle::core {
struct Config;
class App;
}
namespace spindle::fibers {
class Engine;
}

namespace spindle::python {

// Where the applications come from, and how they start (the plugin's options).
struct Settings {
  std::string wsgi_file;
  std::string module;  // "pkg.mod" or "pkg.mod:callable"
  std::string callable = "application";
  std::string paste;  // "config:FILE"
  std::vector<std::string> pythonpath;
  std::vector<std::string> mounts;   // --mount MOUNTPOINT=APP (repeatable)
  bool manage_script_name = false;   // --manage-script-name
  std::vector<std::string> imports;  // --import MODULE (repeatable)
  std::string pyargv;                // --pyargv "ARGS": sys.argv[1:]
  bool disable_file_wrapper = false;  // --wsgi-disable-file-wrapper
  int autoreload = 0;                 // --py-autoreload SECONDS (0: off)
  bool lazy_apps = false;             // --lazy-apps (from the core's Config)
  std::string home;                   // --home/--virtualenv/--venv/-H DIR
  std::string home_option = "home";   // which of those names was used
  std::string home_python;            // DIR/bin/python of a PEP 405 venv
};

// One application source: a file, a module ("mod" or "mod:callable") or a
// Paste Deploy config.
struct AppSource {
  enum Kind { kFile, kModule, kPaste } kind = kFile;
  std::string spec;
  std::string callable = "application";
};

// A loaded application and where it is mounted ("" for the default one).
struct MountedApp {
  std::string mountpoint;  // "/blog" (no trailing '/'), or "" for the root
  PyObject* callable = nullptr;
  std::string label;       // for log lines: "examples/hello.py:application"
};

// The request running on one core.
struct Request {
  core::Exchange* ex = nullptr;
  bool started = false;       // start_response succeeded at least once
  bool bad_response = false;  // start_response refused (app error even if swallowed)
  bool client_gone = false;   // a write failed: stop producing output
  bool body_failed = false;   // reading the body failed (client gone, timeout, too large)
  std::int64_t content_length = -1;  // CONTENT_LENGTH, -1 if absent
  std::uint64_t serial = 0;          // the worker's request count when it began (from 1)
  std::unique_ptr<core::WebSocket> ws;  // after the handshake (either face)
  PyObject* ws_obj = nullptr;           // spindle.websocket()'s object, once made
};

// Per async core: its request, its thread state and the objects reused from
// one request to the next while the app keeps no reference to them.
struct CoreSlot {
  int id = 0;
  Request request;
  PyThreadState* tstate = nullptr;
  PyObject* responder = nullptr;       // holds &request; owns the two callables
  PyObject* start_response = nullptr;  // builtin bound to responder
  PyObject* write = nullptr;           // builtin bound to responder
  PyObject* input = nullptr;           // wsgi.input
  core::IoWatcher watcher;             // spindle.wait_fd_read/write
  bool suspended = false;              // parked in spindle.suspend(): resume() may wake it
  std::string errors_pending;          // wsgi.errors: this request's unfinished line
};

struct Runtime {
  Settings settings;
  std::vector<MountedApp> apps;  // in the order they were loaded
  int default_app = -1;          // index in apps of the one mounted at the root
  int worker_id = 0;
  bool multiprocess = false;
  int processes = 1;    // --processes
  int async_cores = 1;  // cores per worker: --async x --threads
  long master_pid = 0;  // the master's pid (the process that loaded the app)
  int threads = 1;      // --threads: serving threads per worker
  PyThreadState* main_tstate = nullptr;  // thread 0's own state (stuck dumps, the interpreter)
  // Under --greenlet the app may leave a core by switching greenlets itself,
  // past the scheduler, so a chunk held back for coalescing could wait for
  // as long as the app does: chunks are then sent as they come.
  bool app_switches = false;
  std::vector<std::unique_ptr<CoreSlot>> cores;
};

Runtime& runtime();

// What one serving thread (or the master's main thread) keeps; a thread the
// app started has serving == false.
struct ThreadRuntime {
  bool serving = false;
  PyThreadState* main_tstate = nullptr;  // the thread's own state, outside cores
  PyThreadState* released = nullptr;     // saved by the loop's release hook
  core::Loop* loop = nullptr;            // this thread's loop, once it exists
};

ThreadRuntime& this_thread();

// The slot of core `id`, created on first use.
CoreSlot& core_slot(int id);

// websocket.cc: uWSGI's websocket calls, for the spindle module's table.
PyObject* ws_handshake(PyObject*, PyObject* args);
PyObject* ws_recv(PyObject*, PyObject*);
PyObject* ws_recv_nb(PyObject*, PyObject*);
PyObject* ws_send(PyObject*, PyObject* arg);
PyObject* ws_send_binary(PyObject*, PyObject* arg);
// The app returned (1000) or failed (1011): closes the request's websocket,
// if it has one, and detaches its object.
void ws_finish(Request& rq, int code = 1000);
// The handshake for either face: echo_proto answers with the request's
// Sec-WebSocket-Protocol when proto is empty (uWSGI's way). nullptr with
// IOError set when it fails.
core::WebSocket* ws_start(Request& rq, std::string_view key, std::string_view proto,
                          bool echo_proto);
// Sends str (its UTF-8) or a bytes-like object. False with *err, or with a
// Python error set when arg is neither.
bool ws_send_object(core::WebSocket& ws, PyObject* arg, bool binary, std::string* err);

// --- websocket_object.cc -------------------------------------------------
// Adds websocket(), the WebSocket type and WebSocketClosed to the module.
bool websocket_init(PyObject* module);
// The request ended: the object reports closed from now on.
void ws_object_detach(PyObject* obj);

// --- loader.cc -----------------------------------------------------------
// Starts the interpreter; the spindle module and the embedded modules
// (uwsgi, uwsgidecorators, ...) are importable once it returns true.
// --home and --pyargv apply here.
bool init_interpreter();
// sys.path: the main app file's dir, the mounted files' dirs, --pythonpath,
// then the working directory.
bool set_python_path(const Settings& s);
bool run_imports(const Settings& s);  // --import, in order
// Loads one application (new reference), or nullptr after logging why.
PyObject* load_callable(const AppSource& src, std::string* label);

// --- venv.cc -------------------------------------------------------------
// Validates --home once --chdir is done ("" or one line naming the option)
// and records what apply_home needs.
std::string check_home(Settings& s);
bool apply_home(PyConfig* config, const Settings& s);

// --- apps.cc -------------------------------------------------------------
// Splits "MOUNTPOINT=APP"; APP is FILE.py / FILE.wsgi, a Paste .ini or
// MOD:CALLABLE (as uWSGI). False with *why.
bool parse_mount(std::string_view value, std::string* mountpoint, AppSource* src,
                 std::string* why);
// The main application (if any) and every --mount, into runtime().apps.
bool load_apps(const Settings& s);
// The app for a request and, when --manage-script-name moved the mountpoint
// from PATH_INFO to SCRIPT_NAME, the new pair (*rewrite true).
struct Route {
  bool rewrite = false;
  std::string_view script_name;
  std::string_view path_info;
};
const MountedApp* choose_app(core::Exchange& ex, Route* route);

// --- autoreload.cc -------------------------------------------------------
// --py-autoreload: from worker_start on, checks the files of sys.modules
// every N seconds and asks the master for a reload when one changed.
void start_autoreload(core::Loop& loop, int seconds);

// --- gilstate.cc ---------------------------------------------------------
// Points PyGILState's thread-local at tstate (CPython < 3.12 does not do it
// in PyThreadState_Swap).
void point_gilstate_at(PyThreadState* tstate);

// --- thread_states.cc ----------------------------------------------------
// On serving thread `thread` (0: the worker's main thread, GIL held; others:
// takes the GIL): the thread's main state, its cores' states and the GIL
// release around the loop's sleeps.
bool start_thread_states(const core::Config& cfg, core::Loop& loop, fibers::Engine& engine,
                         int thread);
// The thread's loop has stopped: lets go of the GIL for good (thread 0 takes
// it back with resume_after_threads()).
void stop_thread();
void resume_after_threads();

// --- stuck_dump.cc -------------------------------------------------------
// Gives a stuck worker's dump (core/stuck.hh) each core's Python traceback.
void install_traceback_dumper(const fibers::Engine& engine);

// --- environ.cc ----------------------------------------------------------
bool environ_init();
// A new environ dict for the request on slot (new reference), or nullptr with
// a Python error set.
PyObject* build_environ(CoreSlot& slot);

// --- input.cc ------------------------------------------------------------
extern PyTypeObject* input_type;
bool input_init(PyObject* module);
PyObject* input_new(Request* req);
void input_attach(PyObject* input, Request* req);  // reset for a new request
void input_detach(PyObject* input);                // the request ended

// --- responder.cc --------------------------------------------------------
bool responder_init(PyObject* module);
// Creates slot.responder, start_response and write. False with an error set.
bool responder_new(CoreSlot& slot);
void responder_detach(PyObject* responder);

// --- errors_stream.cc ----------------------------------------------------
bool errors_init(PyObject* module);
PyObject* errors_stream();  // borrowed: the one wsgi.errors object
// Logs the caller's unfinished wsgi.errors line: the current core's inside a
// request (each core keeps its own, so interleaved requests never merge
// their partial lines), the worker's own outside one.
void errors_flush();
// Logs every unfinished line, of every core (the worker is stopping).
void errors_flush_all();
// Logs the pending Python exception with its traceback, after a one-line
// `what`, and clears it.
void log_exception(const char* what);

// --- file_wrapper.cc -----------------------------------------------------
extern PyTypeObject* file_wrapper_type;
bool file_wrapper_init(PyObject* module);
PyObject* file_wrapper_filelike(PyObject* wrapper);  // borrowed

// --- wsgi.cc -------------------------------------------------------------
core::App& wsgi_app();

// --- lib_importer.cc -----------------------------------------------------
// Puts the finder for plugin/python/lib/*.py (compiled in) on sys.meta_path.
bool install_embedded_modules();

// --- spindle_module.cc ---------------------------------------------------
PyObject* init_spindle_module();  // the PyImport_AppendInittab entry
// Adds what _spindle_async.py defines (connect, wait) to the spindle module.
bool extend_spindle_module();
// In a new worker: the @postfork functions in registration order, then the
// uwsgi module's post_fork_hook if the app set one. False if one raised.
bool run_postfork_hooks();

// True inside a request, on a worker thread; else false with RuntimeError
// set ("spindle.WHAT() called from a thread the app started", ...).
bool in_request_core(const char* what);
// Sets spindle.Cancelled (the server cut a wait short) and returns nullptr.
PyObject* raise_cancelled();

// --- waker.cc ------------------------------------------------------------
// Adds _waker() and the Waker type (a thread-safe wake of one core).
bool waker_init(PyObject* module);

// --- loop_calls.cc -------------------------------------------------------
// Adds call_later(), add_callback() and their TimerHandle type to the module.
bool loop_calls_init(PyObject* module);

// True on a serving thread of the worker (not a thread the app started).
bool on_main_thread();

}  // namespace spindle::python
