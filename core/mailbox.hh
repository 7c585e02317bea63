// The thread-safe way into a worker thread's loop.
//
// Everything else in core/ is touched by one thread only: the one that runs
// the loop. A Mailbox lets any other thread (a ThreadPoolExecutor's, an
// asyncio loop's, another worker thread) hand that loop a call to make:
// send() queues fn(arg) under a mutex and writes an eventfd the loop
// watches through an ordinary IoWatcher, so it works under every loop
// engine with no engine support. The eventfd is written only when the
// queue goes from empty to non-empty: a burst of sends costs one wake-up.
//
// Ownership and lifetime
//  - The owner thread open()s it on its loop and close()s it before the
//    loop goes away. Calls still queued then are dropped, not run: their
//    arg belongs to whoever sent it (a worker about to exit leaks it).
//  - fn runs on the owner thread, in a loop callback (main context, never in
//    a core), so it may wake cores; like every loop callback it must not
//    throw.
#pragma once

#include <mutex>
#include <vector>

#include "core/loop.hh"

namespace spindle::core {

class Mailbox {
 public:
  using Fn = void (*)(void* arg);

  Mailbox() = default;
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;
  ~Mailbox() { close(); }

  // On the owner thread. False (errno set) if the eventfd cannot be made.
  bool open(Loop& loop);
  void close();

  // From any thread, with or without an interpreter lock. False if the
  // mailbox is closed (fn will never run).
  bool send(Fn fn, void* arg);

 private:
  struct Item {
    Fn fn;
    void* arg;
  };
  static void on_io(IoWatcher* w, int revents);
  void run_queued();

  std::mutex mu_;
  std::vector<Item> items_;  // guarded by mu_
  bool open_ = false;        // guarded by mu_
  int efd_ = -1;
  Loop* loop_ = nullptr;
  IoWatcher io_;
  std::vector<Item> running_;  // owner thread only: the batch being run
};

}  // namespace spindle::core
