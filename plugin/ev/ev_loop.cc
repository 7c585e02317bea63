// The libev loop engine (--loop ev, the default).
//
// Watchers and timers live in the engine slot of the core's IoWatcher/Timer,
// so arming one allocates nothing; timers run on a timerfd of their own for
// sub-millisecond precision (precise_timers.hh). libev batches interest changes until its
// next poll, so a stop and a restart in one iteration cost at most one
// epoll_ctl. Posted tasks run from a check watcher; an idle watcher keeps
// the poll from blocking while tasks wait.
#include <ev.h>

#include "core/loop.hh"
#include "core/plugin.hh"
#include "core/task_queue.hh"
#include "plugin/ev/precise_timers.hh"

namespace spindle::ev {

using core::IoWatcher;
using core::Task;
using core::Timer;

static_assert(sizeof(ev_io) <= core::kEngineSlot, "ev_io must fit the engine slot");

class EvLoop final : public core::Loop {
 public:
  EvLoop() : loop_(ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV)) {
    ev_set_userdata(loop_, this);
    ev_check_init(&check_, on_check);
    ev_check_start(loop_, &check_);
    ev_idle_init(&idle_, on_idle);
    ev_io_init(&timerfd_io_, on_timerfd, timers_.fd(), EV_READ);
    ev_io_start(loop_, &timerfd_io_);
    wake_.cb = [](Timer*) {};
  }
  ~EvLoop() override { ev_loop_destroy(loop_); }

  std::string_view name() const override { return "ev"; }

  void io_set(IoWatcher& w, int fd, int interest) override {
    ev_io* io = reinterpret_cast<ev_io*>(w.engine);
    if (!w.initialised) {
      ev_io_init(io, on_io, fd, 0);
      io->data = &w;
      w.initialised = true;
      w.fd = fd;
    }
    if (interest == w.interest && fd == w.fd) return;
    if (ev_is_active(io)) ev_io_stop(loop_, io);
    w.fd = fd;
    w.interest = interest;
    if (interest != core::kNone) {
      ev_io_set(io, fd, ((interest & core::kRead) ? EV_READ : 0) |
                            ((interest & core::kWrite) ? EV_WRITE : 0));
      ev_io_start(loop_, io);
    }
  }

  void io_close(IoWatcher& w) override {
    if (!w.initialised) return;
    ev_io* io = reinterpret_cast<ev_io*>(w.engine);
    if (ev_is_active(io)) ev_io_stop(loop_, io);
    w.interest = core::kNone;
    w.fd = -1;
    w.initialised = false;
  }

  void timer_start(Timer& t, double seconds) override { timers_.start(t, seconds); }
  void timer_stop(Timer& t) override { timers_.stop(t); }

  bool has_posted() const override { return !tasks_.empty(); }

  void post(Task& t) override {
    if (tasks_.push(t) && !ev_is_active(&idle_)) ev_idle_start(loop_, &idle_);
  }

  void run() override { ev_run(loop_, 0); }

  void run_once(double timeout) override {
    if (timeout == 0) {
      ev_run(loop_, EVRUN_NOWAIT);
      return;
    }
    // A bounded wait rides on the precise timers (libev's own timeout would
    // be rounded up to a millisecond).
    if (timeout > 0) timers_.start(wake_, timeout);
    ev_run(loop_, EVRUN_ONCE);
    timers_.stop(wake_);
  }

  void stop() override { ev_break(loop_, EVBREAK_ALL); }
  double now() override { return ev_now(loop_); }

  void set_blocking_hooks(void (*release)(void*), void (*acquire)(void*), void* data) override {
    release_ = release;
    acquire_ = acquire;
    hook_data_ = data;
    if (release && acquire) ev_set_loop_release_cb(loop_, on_release, on_acquire);
    else ev_set_loop_release_cb(loop_, nullptr, nullptr);
  }

 private:
  static EvLoop* self(struct ev_loop* l) { return static_cast<EvLoop*>(ev_userdata(l)); }

  static void on_io(struct ev_loop*, ev_io* io, int revents) {
    auto* w = static_cast<IoWatcher*>(io->data);
    w->cb(w, ((revents & EV_READ) ? core::kRead : 0) | ((revents & EV_WRITE) ? core::kWrite : 0));
  }

  static void on_timerfd(struct ev_loop* l, ev_io*, int) { self(l)->timers_.expire(); }

  static void on_check(struct ev_loop* l, ev_check*, int) {
    EvLoop* s = self(l);
    s->tasks_.drain();
    if (s->tasks_.empty() && ev_is_active(&s->idle_)) ev_idle_stop(l, &s->idle_);
  }

  static void on_idle(struct ev_loop*, ev_idle*, int) {}

  static void on_release(struct ev_loop* l) noexcept {
    EvLoop* s = self(l);
    s->release_(s->hook_data_);
  }
  static void on_acquire(struct ev_loop* l) noexcept {
    EvLoop* s = self(l);
    s->acquire_(s->hook_data_);
  }

  struct ev_loop* loop_;
  ev_check check_;
  ev_idle idle_;
  core::TaskQueue tasks_;
  PreciseTimers timers_;
  ev_io timerfd_io_;
  Timer wake_;  // bounds run_once()'s wait
  void (*release_)(void*) = nullptr;
  void (*acquire_)(void*) = nullptr;
  void* hook_data_ = nullptr;
};

class EvPlugin final : public core::Plugin {
 public:
  std::string_view name() const override { return "ev"; }
  std::vector<std::string_view> loop_names() const override { return {"ev"}; }
  std::unique_ptr<core::Loop> make_loop(std::string_view) override {
    return std::make_unique<EvLoop>();
  }
};

}  // namespace spindle::ev

spindle::core::Plugin* spindle_plugin_ev() {
  static spindle::ev::EvPlugin plugin;
  return &plugin;
}
