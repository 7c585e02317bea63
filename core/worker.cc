#include "core/worker.hh"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.hh"
#include "core/stats.hh"
#include "core/stuck.hh"
#include "core/protocol.hh"
#include "core/transport.hh"
#include "core/worker_slot.hh"

namespace spindle::core {

namespace {
int g_worker_id = 0;
Worker* g_worker = nullptr;
}

int worker_id() { return g_worker_id; }

bool call_on_core_thread(int core_id, void (*fn)(void*), void* arg) {
  if (!g_worker || core_id < 0 || core_id >= g_worker->cfg().async) return false;
  return g_worker->mailbox().send(fn, arg);
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

Worker::Worker(const Config& cfg, std::vector<Listener>& listeners, int id, WorkerSlot* slot)
    : cfg_(cfg), listeners_(listeners), id_(id), slot_(slot) {
  g_worker_id = id;
}

Worker::~Worker() = default;

bool Worker::setup() {
  // Die with the master; SIGTERM lets in-flight requests finish.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  stats::attach_worker(id_);
  install_stuck_dump(id_);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGQUIT);
  sigaddset(&set, SIGHUP);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  signal_fd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, SIGCHLD);
  sigprocmask(SIG_UNBLOCK, &unblock, nullptr);

  for (Plugin* p : plugins())
    if (!p->post_fork(cfg_, id_)) return false;

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
  if (!sched_->start(cfg_.async)) {
    log(Level::kError, "cannot allocate %d async cores", cfg_.async);
    return false;
  }
  for (Plugin* p : plugins()) {
    if (!p->worker_start(cfg_, *loop_, *engine_)) return false;
    if (!app_) app_ = p->app();
  }

  // One epoll set holding every listening socket with EPOLLEXCLUSIVE: the
  // kernel wakes one worker per incoming connection instead of all of them,
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
  loop_->io_set(accept_io_, accept_epfd_, kRead);
  signal_io_.cb = on_signal;
  signal_io_.data = this;
  loop_->io_set(signal_io_, signal_fd_, kRead);
  mercy_.cb = on_mercy;
  mercy_.data = this;
  accept_retry_.cb = on_accept_retry;
  accept_retry_.data = this;
  reap_.cb = on_reap;
  reap_.data = this;
  if (!mailbox_.open(*loop_)) {
    log(Level::kError, "eventfd: %s", strerror(errno));
    return false;
  }
  g_worker = this;
  return true;
}

int Worker::run() {
  if (!setup()) return 3;
  if (slot_) stats::put(slot_->ready_pid, getpid());
  log(Level::kInfo, "worker %d (pid %d) ready", id_, static_cast<int>(getpid()));
  loop_->run();
  mailbox_.close();
  for (Plugin* p : plugins()) p->worker_stop();
  return 0;
}

void Worker::on_accept(IoWatcher* w, int) { static_cast<Worker*>(w->data)->accept_ready(); }

void Worker::accept_ready() {
  // A stop signal and a new connection can be reported in the same loop
  // iteration, this callback first: a worker told to stop must leave the
  // connection to the others (a reload's new generation), so it reads its
  // signals before it accepts.
  read_signals();
  if (draining_) return;
  epoll_event evs[16];
  int n = epoll_wait(accept_epfd_, evs, 16, 0);
  for (int i = 0; i < n && !draining_; ++i) {
    const Listener& l = listeners_[evs[i].data.u32];
    // Bounded, so one busy socket cannot hold the loop.
    for (int k = 0; k < 64 && !draining_; ++k) {
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      int fd =
          accept4(l.fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
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

void Worker::request_done() {
  ++requests_;
  // --max-requests-delta spreads the recycling: worker N waits N * delta more.
  const long limit = cfg_.max_requests + id_ * cfg_.max_requests_delta;
  if (cfg_.max_requests > 0 && requests_ >= limit && !draining_) {
    log(Level::kInfo, "worker %d (pid %d) reached max-requests (%ld); recycling", id_,
        static_cast<int>(getpid()), limit);
    stats::set_exit_reason(stats::ExitReason::kMaxRequests);
    begin_drain("max-requests");
  }
}

void Worker::on_signal(IoWatcher* w, int) { static_cast<Worker*>(w->data)->read_signals(); }

void Worker::read_signals() {
  signalfd_siginfo si;
  while (::read(signal_fd_, &si, sizeof si) == sizeof si) {
    if (si.ssi_signo == SIGHUP) continue;  // the master reloads; workers just get replaced
    begin_drain(strsignal(static_cast<int>(si.ssi_signo)));
  }
}

void Worker::begin_drain(const char* why) {
  if (draining_) return;
  draining_ = true;
  stats::set_accepting(false);
  // Stop taking connections; the other workers (or the new generation)
  // accept what is still queued on the shared sockets.
  loop_->io_close(accept_io_);
  loop_->timer_stop(accept_retry_);
  close(accept_epfd_);
  accept_epfd_ = -1;
  for (Transport* c = conns_; c;) {
    Transport* next = c->next;
    if (c->idle()) c->close();
    c = next;
  }
  loop_->timer_start(mercy_, cfg_.reload_mercy);
  (void)why;
  maybe_finish_drain();
}

void Worker::maybe_finish_drain() {
  if (conn_count_ == 0) loop_->stop();
}

// The drain took too long. First every parked request is woken with
// kCancelled (the app sees spindle.Cancelled or a failed read/write) so it
// can unwind and close; a second later the loop stops regardless.
void Worker::on_mercy(Timer* t) {
  auto* self = static_cast<Worker*>(t->data);
  if (!self->mercy_spent_) {
    self->mercy_spent_ = true;
    log(Level::kWarn,
        "worker %d (pid %d): %zu connections still open after %.0fs; "
        "cancelling",
        self->id_, static_cast<int>(getpid()), self->conn_count_, self->cfg_.reload_mercy);
    self->loop_->timer_start(self->mercy_, 1.0);
    self->sched_->cancel_all();  // may close the last connection and stop the loop
    return;
  }
  log(Level::kWarn, "worker %d (pid %d): %zu connections still open; stopping", self->id_,
      static_cast<int>(getpid()), self->conn_count_);
  self->loop_->stop();
}

}  // namespace spindle::core
