// Start-up checks of the host's limits against --async, made by the master
// before any fork, so that an --async the machine cannot hold is refused with
// one line naming the limit and its remedy (exit 2) instead of workers that
// fail at start over and over.
//
// What is checked (per worker unless said otherwise)
//  - vm.max_map_count: the memory mappings the fiber stacks need
//    (fibers/suspend.hh: fiber_stack_mappings) plus what the process already
//    has and room for the interpreter.
//  - memory: every core in use costs at least kCoreFloor resident bytes; all
//    workers' cores together must fit in RAM + swap.
//  - address space: the stacks' reservation against `ulimit -v`, and against
//    the commit limit when vm.overcommit_memory is 2 (strict accounting
//    ignores MAP_NORESERVE).
//  - open files: the soft RLIMIT_NOFILE is raised (up to the hard limit) so
//    every core can hold a connection; a hard limit below that is only
//    warned about, since cores also serve work that holds no socket.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace spindle::core {

struct Config;

// What the host allows; 0 means unknown or unlimited.
struct HostLimits {
  std::uint64_t max_map_count = 0;
  std::uint64_t mappings_in_use = 0;  // this process's own now
  std::uint64_t nofile_soft = 0;
  std::uint64_t nofile_hard = 0;
  std::uint64_t address_space = 0;  // RLIMIT_AS
  std::uint64_t memory = 0;         // MemTotal + SwapTotal
  int overcommit = 0;               // vm.overcommit_memory
  std::uint64_t commit_free = 0;    // CommitLimit - Committed_AS
};

struct AsyncPlan {
  std::string refusal;                // one line, or empty when --async fits
  std::vector<std::string> warnings;  // one line each
  std::uint64_t nofile_soft = 0;      // raise the soft limit to this (0: leave it)
};

// Resident bytes a core in use costs at the least (a stack page, the fiber's
// record, an interpreter thread state): what the memory check assumes.
constexpr std::uint64_t kCoreFloor = 8 * 1024;
// Descriptors a worker holds besides its connections (listeners, epoll,
// signalfd, log, the app's own files).
constexpr std::uint64_t kSpareFds = 64;
// Mappings a worker has besides its fiber stacks grow with the interpreter's
// arenas; this much room is kept on top of the master's own count.
constexpr std::uint64_t kSpareMappings = 2000;

HostLimits read_host_limits();

// Pure: decides from cfg and h. fiber_mappings/fiber_reserve are what the
// native engine's stacks need for cfg.async contexts (0 for other engines).
AsyncPlan plan_async(const Config& cfg, const HostLimits& h, std::uint64_t fiber_mappings,
                     std::uint64_t fiber_reserve);

// Reads the limits, raises the descriptor limit, logs the warnings, and
// returns the refusal line (empty when --async fits).
std::string check_async_limits(const Config& cfg, bool fibers);

}  // namespace spindle::core
