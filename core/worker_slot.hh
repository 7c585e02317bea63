// What a worker shares with the master (one slot per worker, in an
// anonymous shared mapping made before the first fork). The master reads it
// once a second to enforce --harakiri.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>

namespace spindle::core {

struct WorkerSlot {
  std::atomic<pid_t> pid{0};
  // Set by the worker once it is ready to serve (its apps loaded): a
  // --lazy-apps reload waits for it before replacing the next worker.
  std::atomic<pid_t> ready_pid{0};
  // CLOCK_MONOTONIC milliseconds at which the running core was switched in
  // without having parked since; 0 while the worker waits in its loop.
  std::atomic<std::int64_t> busy_since_ms{0};
  char request[120] = {};  // the request line of that core, for the log
};

std::int64_t monotonic_ms();

}  // namespace spindle::core
