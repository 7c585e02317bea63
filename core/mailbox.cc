#include "core/mailbox.hh"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace spindle::core {

bool Mailbox::open(Loop& loop) {
  efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd_ < 0) return false;
  loop_ = &loop;
  io_.cb = on_io;
  io_.data = this;
  loop.io_set(io_, efd_, kRead);
  std::lock_guard<std::mutex> lock(mu_);
  open_ = true;
  return true;
}

void Mailbox::close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!open_) return;
    open_ = false;
    items_.clear();
  }
  loop_->io_close(io_);
  ::close(efd_);
  efd_ = -1;
}

bool Mailbox::send(Fn fn, void* arg) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!open_) return false;
    was_empty = items_.empty();
    items_.push_back({fn, arg});
    // Written under the lock: close() cannot close the fd in between.
    if (was_empty) {
      std::uint64_t one = 1;
      ssize_t n = ::write(efd_, &one, sizeof one);
      (void)n;  // EAGAIN only when the counter is saturated: it is readable anyway
    }
  }
  return true;
}

void Mailbox::on_io(IoWatcher* w, int) { static_cast<Mailbox*>(w->data)->run_queued(); }

void Mailbox::run_queued() {
  std::uint64_t count;
  ssize_t n = ::read(efd_, &count, sizeof count);
  (void)n;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_.swap(items_);
  }
  // Calls sent while these run wait for the next wake-up (the eventfd was
  // written again), so a sender in a loop cannot starve this loop.
  for (const Item& it : running_) it.fn(it.arg);
  running_.clear();
}

}  // namespace spindle::core
