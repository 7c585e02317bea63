#include "core/worker.hh"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "core/log.hh"
#include "core/protocol.hh"
#include "core/stats.hh"
#include "core/stuck.hh"
#include "core/transport.hh"
#include "core/worker_slot.hh"

namespace spindle::core {

namespace {

// The worker process this address space runs (one per process).
struct Process {
  const Config* cfg = nullptr;
  int id = 0;
  std::vector<std::unique_ptr<Worker>> threads;  // fixed before any thread starts
  std::atomic<long> requests{0};
  std::atomic<bool> draining{false};
};

Process g_process;
thread_local Worker* t_worker = nullptr;  // the serving thread running here

Worker* owner_of(int core_id) {
  const Config* cfg = g_process.cfg;
  if (!cfg || core_id < 0) return nullptr;
  std::size_t t = static_cast<std::size_t>(core_id / cfg->async);
  return t < g_process.threads.size() ? g_process.threads[t].get() : nullptr;
}

// Every thread stops taking connections and finishes what it holds.
void drain_process(const char* why) {
  if (g_process.draining.exchange(true)) return;
  (void)why;
  stats::set_accepting(false);
  for (auto& w : g_process.threads) {
    if (w.get() == t_worker) {
      w->begin_drain();
    } else {
      w->mailbox().send([](void* arg) { static_cast<Worker*>(arg)->begin_drain(); }, w.get());
    }
  }
}

struct RemoteWake {
  int core_id;
  Wake why;
};

}  // namespace

int worker_id() { return g_process.id; }

bool call_on_core_thread(int core_id, void (*fn)(void*), void* arg) {
  Worker* w = owner_of(core_id);
  return w && w->mailbox().send(fn, arg);
}

bool wake_on_other_thread(int core_id, Wake why) {
  Worker* w = owner_of(core_id);
  if (!w || w == t_worker) return false;
  auto* msg = new RemoteWake{core_id, why};
  auto deliver = [](void* arg) {
    auto* m = static_cast<RemoteWake*>(arg);
    wake(m->core_id, m->why);
    delete m;
  };
  if (w->mailbox().send(deliver, msg)) return true;
  delete msg;
  return false;
}

Plugin* loop_provider(std::string_view name) {
  for (Plugin* p : plugins())
    for (std::string_view n : p->loop_names())
      if (n == name) return p;
  return nullptr;
}

Plugin* suspend_provider(std::string_view name) {
  for (Plugin* p : plugins())
    for (std::string_view n : p->suspend_names())
      if (n == name) return p;
  return nullptr;
}

int run_worker_process(const Config& cfg, std::vector<Listener>& listeners, int id,
                       WorkerSlot* slot) {
  g_process.cfg = &cfg;
  g_process.id = id;
  // Die with the master; SIGTERM lets in-flight requests finish.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  stats::attach_worker(id);
  install_stuck_dump(id);

  // Blocked here, so in every serving thread; thread 0 reads them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGQUIT);
  sigaddset(&set, SIGHUP);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  int signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, SIGCHLD);
  sigprocmask(SIG_UNBLOCK, &unblock, nullptr);

  for (Plugin* p : plugins())
    if (!p->post_fork(cfg, id)) return 3;

  for (int t = 0; t < cfg.threads; ++t)
    g_process.threads.push_back(std::make_unique<Worker>(cfg, listeners, id, t, slot));
  Worker& first = *g_process.threads[0];
  if (!first.setup(signal_fd)) return 3;

  // The other threads start serving once thread 0 runs its loop: their start
  // hooks wait for the interpreter lock that thread 0 holds until then.
  std::vector<std::thread> others;
  for (int t = 1; t < cfg.threads; ++t) {
    Worker* w = g_process.threads[static_cast<std::size_t>(t)].get();
    others.emplace_back([w, &first] {
      // The stuck dump's handler runs on thread 0, which has its stack.
      sigset_t dump;
      sigemptyset(&dump);
      sigaddset(&dump, dump_signal());
      pthread_sigmask(SIG_BLOCK, &dump, nullptr);
      if (!w->setup(-1)) _exit(3);  // logged; the master respawns the worker
      w->run();
      for (Plugin* p : plugins()) p->thread_stop();
      first.mailbox().send([](void* arg) { static_cast<Worker*>(arg)->thread_finished(); },
                           &first);
    });
  }
  if (slot) stats::put(slot->ready_pid, getpid());
  if (cfg.threads > 1) {
    log(Level::kInfo, "worker %d (pid %d) ready, %d threads", id, static_cast<int>(getpid()),
        cfg.threads);
  } else {
    log(Level::kInfo, "worker %d (pid %d) ready", id, static_cast<int>(getpid()));
  }
  first.run();
  for (Plugin* p : plugins()) p->thread_stop();
  for (std::thread& t : others) t.join();
  for (Plugin* p : plugins()) p->worker_stop();
  return 0;
}

Worker::Worker(const Config& cfg, std::vector<Listener>& listeners, int id, int thread,
               WorkerSlot* slot)
    : cfg_(cfg), listeners_(listeners), id_(id), thread_(thread), slot_(slot) {}

Worker::~Worker() = default;

bool Worker::setup(int signal_fd) {
  t_worker = this;
  stats::attach_thread(thread_);
  signal_fd_ = signal_fd;
  Plugin* lp = loop_provider(cfg_.loop);
  if (!lp) {
    log(Level::kError, "no loop engine named '%s'", cfg_.loop.c_str());
    return false;
  }
  loop_ = lp->make_loop(cfg_.loop);
  if (!loop_) return false;

  std::string suspend = cfg_.suspend.empty() ? "fibers" : cfg_.suspend;
  if (Plugin* sp = suspend_provider(suspend)) engine_ = sp->make_suspend(suspend, cfg_);
  if (!engine_) {
    log(Level::kError, "cannot start the suspend engine '%s'", suspend.c_str());
    return false;
  }

  static_files_.init(cfg_);
  sched_ = std::make_unique<Scheduler>(*loop_, *engine_, cfg_.harakiri > 0 ? slot_ : nullptr);
  if (!sched_->start(cfg_.async, thread_ * cfg_.async)) {
    log(Level::kError, "cannot allocate %d async cores", cfg_.async);
    return false;
  }
  if (!mailbox_.open(*loop_)) {
    log(Level::kError, "eventfd: %s", strerror(errno));
    return false;
  }
  for (Plugin* p : plugins()) {
    bool ok = thread_ == 0 ? p->worker_start(cfg_, *loop_, *engine_)
                           : p->thread_start(cfg_, *loop_, *engine_, thread_);
    if (!ok) return false;
    if (!app_) app_ = p->app();
  }

  // One epoll set holding every listening socket with EPOLLEXCLUSIVE: the
  // kernel wakes one waiter per incoming connection instead of all of them,
  // whatever loop engine watches this set's fd.
  accept_epfd_ = epoll_create1(EPOLL_CLOEXEC);
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    if (epoll_ctl(accept_epfd_, EPOLL_CTL_ADD, listeners_[i].fd, &ev) < 0) {
      log(Level::kError, "epoll_ctl(%s): %s", listeners_[i].bound.c_str(), strerror(errno));
      return false;
    }
  }
  accept_io_.cb = on_accept;
  accept_io_.data = this;
  mercy_.cb = on_mercy;
  mercy_.data = this;
  accept_retry_.cb = on_accept_retry;
  accept_retry_.data = this;
  reap_.cb = on_reap;
  reap_.data = this;
  if (g_process.draining.load()) {
    begin_drain();  // the stop came while this thread was starting
  } else {
    loop_->io_set(accept_io_, accept_epfd_, kRead);
  }
  if (signal_fd_ >= 0) {
    signal_io_.cb = on_signal;
    signal_io_.data = this;
    loop_->io_set(signal_io_, signal_fd_, kRead);
  }
  return true;
}

void Worker::on_accept(IoWatcher* w, int) { static_cast<Worker*>(w->data)->accept_ready(); }

void Worker::accept_ready() {
  // A stop signal and a new connection can be reported in the same loop
  // iteration, this callback first: a worker told to stop must leave the
  // connection to the others (a reload's new generation), so it reads its
  // signals (thread 0) or the worker's stop flag (the others) before it
  // accepts.
  read_signals();
  if (!draining_ && g_process.draining.load(std::memory_order_relaxed)) begin_drain();
  if (draining_) return;
  epoll_event evs[16];
  int n = epoll_wait(accept_epfd_, evs, 16, 0);
  for (int i = 0; i < n && !draining_; ++i) {
    const Listener& l = listeners_[evs[i].data.u32];
    // Bounded, so one busy socket cannot hold the loop.
    for (int k = 0; k < 64 && !draining_; ++k) {
      if (!has_room()) {
        // Leave the connection in the kernel's queue for a thread with a
        // free core; request_done() watches the socket again.
        accept_full_ = true;
        loop_->io_stop(accept_io_);
        return;
      }
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      int fd = accept4(l.fd, reinterpret_cast<sockaddr*>(&peer), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE) pause_accepting(errno);
        break;
      }
      out_of_fds_ = false;
      if (!l.unix_socket) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      (new Transport(*this, l, fd, peer))->start();
    }
  }
}

// With one serving thread, a connection accepted while every core is busy
// waits in the scheduler's FIFO. With several, it is better left in the
// kernel's queue: another thread may have a free core now.
bool Worker::has_room() const {
  if (cfg_.threads == 1) return true;
  return sched_->busy() + sched_->waiting() < static_cast<std::size_t>(cfg_.async);
}

// Out of file descriptors: the pending connection stays in the kernel's
// queue and the level-triggered accept fd would wake the loop at once, for
// ever. Stop watching it for a moment; closed connections free fds.
void Worker::pause_accepting(int err) {
  if (!out_of_fds_)
    log(Level::kWarn, "accept: %s; pausing accepts until descriptors free up", strerror(err));
  out_of_fds_ = true;
  loop_->io_stop(accept_io_);
  loop_->timer_start(accept_retry_, 0.1);
}

void Worker::on_accept_retry(Timer* t) {
  auto* self = static_cast<Worker*>(t->data);
  if (!self->draining_) self->loop_->io_set(self->accept_io_, self->accept_epfd_, kRead);
}

void Worker::add(Transport* t) {
  t->next = conns_;
  if (conns_) conns_->prev = t;
  conns_ = t;
  ++conn_count_;
  stats::set_connections(conn_count_);
}

void Worker::retire(Transport* t) {
  if (t->prev)
    t->prev->next = t->next;
  else
    conns_ = t->next;
  if (t->next) t->next->prev = t->prev;
  t->prev = t->next = nullptr;
  closed_.push_back(t);
  loop_->post(reap_);
}

// The end of the loop iteration for closed transports: whoever closed them
// has returned to the loop.
void Worker::on_reap(Task* task) {
  auto* self = static_cast<Worker*>(task->data);
  std::vector<Transport*> closed;
  closed.swap(self->closed_);
  for (Transport* t : closed) delete t;
  self->conn_count_ -= closed.size();
  stats::set_connections(self->conn_count_);
  if (self->draining_) self->maybe_finish_drain();
}

// --max-requests counts the requests of every thread of the worker.
void Worker::request_done() {
  if (accept_full_ && !draining_) {
    accept_full_ = false;  // a core is about to be free
    if (!out_of_fds_) loop_->io_set(accept_io_, accept_epfd_, kRead);
  }
  long n = g_process.requests.fetch_add(1, std::memory_order_relaxed) + 1;
  // --max-requests-delta spreads the recycling: worker N waits N * delta more.
  const long limit = cfg_.max_requests + id_ * cfg_.max_requests_delta;
  if (cfg_.max_requests > 0 && n == limit) {
    log(Level::kInfo, "worker %d (pid %d) reached max-requests (%ld); recycling", id_,
        static_cast<int>(getpid()), limit);
    stats::set_exit_reason(stats::ExitReason::kMaxRequests);
    drain_process("max-requests");
  }
}

void Worker::on_signal(IoWatcher* w, int) { static_cast<Worker*>(w->data)->read_signals(); }

void Worker::read_signals() {
  if (signal_fd_ < 0) return;  // not thread 0
  signalfd_siginfo si;
  while (::read(signal_fd_, &si, sizeof si) == sizeof si) {
    if (si.ssi_signo == SIGHUP) continue;  // the master reloads; workers just get replaced
    drain_process(strsignal(static_cast<int>(si.ssi_signo)));
  }
}

void Worker::begin_drain() {
  if (draining_) return;
  draining_ = true;
  // Stop taking connections; the other workers (or the new generation)
  // accept what is still queued on the shared sockets.
  if (accept_epfd_ >= 0) {
    loop_->io_close(accept_io_);
    loop_->timer_stop(accept_retry_);
    close(accept_epfd_);
    accept_epfd_ = -1;
  }
  for (Transport* c = conns_; c; c = c->next) c->drain();
  loop_->timer_start(mercy_, cfg_.reload_mercy);
  maybe_finish_drain();
}

void Worker::thread_finished() {
  ++others_finished_;
  if (draining_) maybe_finish_drain();
}

// A thread stops when it holds no connection; thread 0 waits for the
// others too, since the process exits when it returns.
void Worker::maybe_finish_drain() {
  if (conn_count_ != 0) return;
  if (thread_ == 0 && others_finished_ < cfg_.threads - 1) return;
  loop_->timer_stop(mercy_);
  mailbox_.close();
  loop_->stop();
}

// The drain took too long. First every parked request is woken with
// kCancelled (the app sees spindle.Cancelled or a failed read/write) so it
// can unwind and close; a second later the loop stops regardless.
void Worker::on_mercy(Timer* t) {
  auto* self = static_cast<Worker*>(t->data);
  if (!self->mercy_spent_) {
    self->mercy_spent_ = true;
    if (self->conn_count_ > 0)
      log(Level::kWarn, "worker %d (pid %d): %zu connections still open after %.0fs; cancelling",
          self->id_, static_cast<int>(getpid()), self->conn_count_, self->cfg_.reload_mercy);
    self->loop_->timer_start(self->mercy_, 1.0);
    self->sched_->cancel_all();  // may close the last connection and stop the loop
    return;
  }
  log(Level::kWarn, "worker %d (pid %d): %zu connections still open; stopping", self->id_,
      static_cast<int>(getpid()), self->conn_count_);
  self->mailbox_.close();
  self->loop_->stop();
}

}  // namespace spindle::core
