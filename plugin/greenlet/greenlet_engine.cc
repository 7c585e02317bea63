// The greenlet suspend engine (see greenlet_engine.hh for the model).
//
// Why the pieces sit where they do
//  - This is the only file that includes greenlet.h: the header defines its
//    table of C-API pointers as a static variable, so every file including it
//    would need to import the capsule again.
//  - A core's greenlet runs a C function (run_core below) that calls the
//    core's entry. The function gets the core's Context through a capsule
//    held as the function's `self`, so one static PyMethodDef serves every
//    core and nothing is looked up on the way in.
//  - current() asks greenlet for the running greenlet on every call instead
//    of trusting a field set by resume(): the app may switch greenlets
//    itself (me.parent.switch() to park, a loop callback calling me.switch()
//    to come back), and the scheduler must then still see the right core.
//    The fast path is one call into greenlet and one pointer compare against
//    the last answer, cached only for greenlets that live as long as the
//    engine (main and the cores' own), so a freed app greenlet's address
//    can never alias a stale cache entry.
//  - A greenlet the app created inside a request (parent: the core's
//    greenlet, or a chain of them) belongs to that core. When it parks
//    through the scheduler, suspend() remembers it and the next resume()
//    continues it, not the core's own greenlet, which is still waiting in
//    the app's switch() to the child.
//
// Errors
//  - No C++ exception crosses a switch: run_entry() is noexcept, so an entry
//    that throws terminates the process (the seam's rule).
//  - A Python error that comes back from a switch (an exception thrown into a
//    parked core, a core greenlet that died raising) is logged with its
//    traceback and cleared. A core is finished when its greenlet is dead.
//  - Misuse (resume() from inside a core, suspend() on main) aborts, as the
//    fiber engine does: the master logs the signal and respawns the worker.
#include "plugin/greenlet/greenlet_engine.hh"

#include "plugin/python/python.hh"  // <Python.h> first

#include <greenlet.h>

#include <cstdio>
#include <cstdlib>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/log.hh"

namespace spindle::greenlet {

namespace {

constexpr const char* kCapsuleName = "spindle.greenlet.core";
// How far up the parent chain current() looks for a core (app greenlets
// nested inside a request). Deeper chains are treated as "not a core".
constexpr int kMaxDepth = 64;

struct GreenletContext : fibers::Context {
  fibers::Entry entry = nullptr;
  PyGreenlet* greenlet = nullptr;  // owned: the core's own greenlet
  PyGreenlet* parked = nullptr;    // owned: an app greenlet of this core that suspended
};

struct Hook {
  void (*fn)(fibers::Context*, void*);
  void* data;
};

[[noreturn]] __attribute__((cold)) void misuse(const char* what) {
  std::fprintf(stderr, "spindle: greenlet engine misuse: %s\n", what);
  std::abort();
}

bool is_dead(PyGreenlet* g) { return PyGreenlet_STARTED(g) > 0 && PyGreenlet_ACTIVE(g) == 0; }

void run_entry(GreenletContext* ctx) noexcept { ctx->entry(ctx); }

// The `run` of every core's greenlet. The entry normally never returns (a
// core loops forever); if it does, the greenlet dies and its core is finished.
PyObject* run_core(PyObject* self, PyObject*, PyObject*) {
  auto* ctx = static_cast<GreenletContext*>(PyCapsule_GetPointer(self, kCapsuleName));
  if (!ctx) return nullptr;
  run_entry(ctx);
  if (PyErr_Occurred()) python::log_exception("greenlet: a core's entry left a Python error");
  Py_RETURN_NONE;
}

PyMethodDef run_core_def = {"spindle_core",
                            reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(run_core)),
                            METH_VARARGS | METH_KEYWORDS, "Runs one spindle async core."};

class GreenletEngine final : public fibers::Engine {
 public:
  explicit GreenletEngine(PyGreenlet* main) : main_(main) {}

  ~GreenletEngine() override {
    if (current() != nullptr) misuse("engine destroyed from inside a core");
    std::vector<GreenletContext*> left;
    for (auto& kv : by_greenlet_) left.push_back(kv.second);
    for (GreenletContext* ctx : left) destroy(ctx);
    Py_DECREF(main_);
  }

  std::string_view name() const override { return "greenlet"; }
  bool shares_thread_state() const override { return true; }

  fibers::Context* spawn(fibers::Entry entry, int id, void* arg) override {
    auto* ctx = new GreenletContext;
    ctx->id = id;
    ctx->arg = arg;
    ctx->entry = entry;
    PyObject* self = PyCapsule_New(ctx, kCapsuleName, nullptr);
    PyObject* run = self ? PyCFunction_NewEx(&run_core_def, self, nullptr) : nullptr;
    Py_XDECREF(self);
    PyGreenlet* g = run ? PyGreenlet_New(run, main_) : nullptr;
    Py_XDECREF(run);
    if (!g) {
      python::log_exception("greenlet: cannot create the greenlet of a core");
      delete ctx;
      return nullptr;
    }
    ctx->greenlet = g;
    by_greenlet_.emplace(reinterpret_cast<PyObject*>(g), ctx);
    return ctx;
  }

  void resume(fibers::Context* base) override {
    auto* ctx = static_cast<GreenletContext*>(base);
    if (__builtin_expect(current() != nullptr, 0)) misuse("resume() called inside a core");
    if (__builtin_expect(ctx->finished, 0)) misuse("resume() of a finished core");
    PyGreenlet* parked = std::exchange(ctx->parked, nullptr);  // owned until the end
    PyGreenlet* target = parked && !is_dead(parked) ? parked : ctx->greenlet;
    for (const Hook& h : in_) h.fn(ctx, h.data);
    PyObject* r = PyGreenlet_Switch(target, nullptr, nullptr);
    if (r) {
      Py_DECREF(r);
    } else {
      python::log_exception("greenlet: an async core's greenlet raised");
    }
    Py_XDECREF(parked);
    if (is_dead(ctx->greenlet)) ctx->finished = true;
    for (const Hook& h : out_) h.fn(ctx, h.data);
  }

  void suspend() override {
    PyGreenlet* g = PyGreenlet_GetCurrent();  // new reference
    if (!g) misuse("suspend(): greenlet has no current greenlet");
    GreenletContext* ctx = context_of(g);
    if (!ctx) misuse("suspend() called outside a core");
    if (g == ctx->greenlet) {
      Py_DECREF(g);
    } else {
      // An app greenlet inside the request: resume() continues it. Keep the
      // reference so that it stays alive while parked.
      Py_XDECREF(ctx->parked);
      ctx->parked = g;
    }
    PyObject* r = PyGreenlet_Switch(main_, nullptr, nullptr);
    if (r) {
      Py_DECREF(r);
    } else {
      python::log_exception("greenlet: an exception was thrown into a parked async core");
    }
  }

  fibers::Context* current() const override {
    PyGreenlet* g = PyGreenlet_GetCurrent();
    if (__builtin_expect(!g, 0)) {
      PyErr_Clear();
      return nullptr;
    }
    // Borrowed from here on: greenlet's per-thread state holds the running
    // greenlet for as long as it runs.
    Py_DECREF(g);
    if (__builtin_expect(g == last_, 1)) return last_ctx_;
    return context_of(g);
  }

  void destroy(fibers::Context* base) override {
    if (base == nullptr) return;
    auto* ctx = static_cast<GreenletContext*>(base);
    if (ctx == current()) misuse("destroy() of the running core");
    for (const Hook& h : gone_) h.fn(ctx, h.data);
    by_greenlet_.erase(reinterpret_cast<PyObject*>(ctx->greenlet));
    if (last_ctx_ == ctx) {
      last_ = nullptr;
      last_ctx_ = nullptr;
    }
    drop(ctx->parked);
    drop(ctx->greenlet);
    delete ctx;
  }

  void add_observer(const fibers::SwitchObserver& obs) override {
    if (obs.on_switch_in != nullptr) in_.push_back({obs.on_switch_in, obs.data});
    if (obs.on_switch_out != nullptr) out_.insert(out_.begin(), {obs.on_switch_out, obs.data});
    if (obs.on_destroy != nullptr) gone_.push_back({obs.on_destroy, obs.data});
  }

 private:
  // The core that greenlet g belongs to (g itself or its nearest core
  // ancestor), or nullptr for main and for greenlets outside every core.
  GreenletContext* context_of(PyGreenlet* g) const {
    if (g == main_) return remember(g, nullptr);
    auto it = by_greenlet_.find(reinterpret_cast<PyObject*>(g));
    if (it != by_greenlet_.end()) return remember(g, it->second);
    // An app greenlet: walk its parents. Rare, so the pending error (if any)
    // is saved around greenlet's parent getter, which may set one.
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    GreenletContext* found = nullptr;
    PyGreenlet* at = g;
    for (int depth = 0; depth < kMaxDepth; ++depth) {
      PyGreenlet* parent = PyGreenlet_GetParent(at);  // new reference, or NULL
      if (!parent) break;
      // The child's own parent reference keeps the parent alive.
      Py_DECREF(parent);
      if (parent == main_) break;
      auto p = by_greenlet_.find(reinterpret_cast<PyObject*>(parent));
      if (p != by_greenlet_.end()) {
        found = p->second;
        break;
      }
      at = parent;
    }
    PyErr_Restore(type, value, tb);
    return found;
  }

  // Caches the answer for g, which must outlive the engine's use of it:
  // main or a core's own greenlet (both owned here).
  GreenletContext* remember(PyGreenlet* g, GreenletContext* ctx) const {
    last_ = g;
    last_ctx_ = ctx;
    return ctx;
  }

  // A greenlet suspended mid-run would get GreenletExit thrown into it when
  // collected; a core's entry never returns, so greenlet would complain and
  // leak it anyway. It is left alone instead: like the fiber engine, a parked
  // context is abandoned, not unwound (the worker is exiting when this runs).
  static void drop(PyGreenlet* g) {
    if (g == nullptr) return;
    if (PyGreenlet_ACTIVE(g) > 0) return;
    Py_DECREF(g);
  }

  PyGreenlet* main_;  // owned: the worker's main greenlet, every core's parent
  std::unordered_map<PyObject*, GreenletContext*> by_greenlet_;  // core greenlet -> core
  mutable PyGreenlet* last_ = nullptr;           // last greenlet current() mapped
  mutable GreenletContext* last_ctx_ = nullptr;  // ... and its core (nullptr: main)
  std::vector<Hook> in_;   // registration order
  std::vector<Hook> out_;  // reverse registration order
  std::vector<Hook> gone_;  // registration order
};

bool greenlet_importable() {
  if (_PyGreenlet_API != nullptr) return true;
  PyGreenlet_Import();
  if (_PyGreenlet_API != nullptr) return true;
  python::log_exception("greenlet: cannot import greenlet's C API (package python3-greenlet)");
  return false;
}

}  // namespace

std::unique_ptr<fibers::Engine> make_greenlet_engine() {
  if (!Py_IsInitialized()) {
    SPINDLE_LOG_ERROR("greenlet: the interpreter is not running (the python plugin starts it)");
    return nullptr;
  }
  if (!greenlet_importable()) return nullptr;
  PyGreenlet* main = PyGreenlet_GetCurrent();
  if (!main) {
    python::log_exception("greenlet: cannot get the current greenlet");
    return nullptr;
  }
  if (PyGreenlet_MAIN(main) <= 0) {
    Py_DECREF(main);
    SPINDLE_LOG_ERROR("greenlet: the engine must be created on the main greenlet");
    return nullptr;
  }
  return std::make_unique<GreenletEngine>(main);
}

}  // namespace spindle::greenlet
