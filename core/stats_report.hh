// The master's views of the published stats (core/stats.hh): uWSGI's stats
// JSON, so uwsgitop and other stats-server clients work unchanged, and the
// Prometheus text exposition format. Both read the shared slots without
// locks and never ask a worker anything.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/listener.hh"

namespace spindle::core::stats {

// uWSGI's top-level keys and per-worker and per-core fields, plus spindle's
// own (documented in the README, "Stats and metrics").
std::string json(const std::vector<Listener>& listeners);

// Prometheus text format 0.0.4.
std::string metrics(const std::vector<Listener>& listeners);

struct ProcMem {
  std::uint64_t rss = 0;  // bytes
  std::uint64_t vsz = 0;
};
ProcMem proc_mem(pid_t pid);

struct Backlog {
  std::uint32_t queue = 0;  // connections waiting in the kernel for accept()
  std::uint32_t max = 0;    // the listen backlog
};
Backlog backlog(const Listener& l);

}  // namespace spindle::core::stats
