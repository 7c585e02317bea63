#include "core/limits.hh"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "core/config.hh"
#include "core/log.hh"
#include "fibers/suspend.hh"

namespace spindle::core {

namespace {

std::uint64_t read_number(const char* path) {
  std::FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  unsigned long long v = 0;
  int n = std::fscanf(f, "%llu", &v);
  std::fclose(f);
  return n == 1 ? v : 0;
}

std::uint64_t count_lines(const char* path) {
  std::FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  std::uint64_t lines = 0;
  char buf[65536];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
    for (std::size_t i = 0; i < n; ++i) lines += buf[i] == '\n';
  std::fclose(f);
  return lines;
}

std::uint64_t limit_value(rlim_t v) { return v == RLIM_INFINITY ? 0 : static_cast<std::uint64_t>(v); }

std::string amount(std::uint64_t bytes) {
  char buf[32];
  const double mib = static_cast<double>(bytes) / (1024.0 * 1024.0);
  if (mib >= 1024) {
    std::snprintf(buf, sizeof buf, "%.1f GiB", mib / 1024.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f MiB", mib);
  }
  return buf;
}

std::string async_label(const Config& cfg) {
  std::string s = "--async " + std::to_string(cfg.async);
  if (cfg.processes > 1) s += " with " + std::to_string(cfg.processes) + " workers";
  return s;
}

}  // namespace

HostLimits read_host_limits() {
  HostLimits h;
  h.max_map_count = read_number("/proc/sys/vm/max_map_count");
  h.mappings_in_use = count_lines("/proc/self/maps");
  h.overcommit = static_cast<int>(read_number("/proc/sys/vm/overcommit_memory"));
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    h.nofile_soft = limit_value(rl.rlim_cur);
    h.nofile_hard = limit_value(rl.rlim_max);
  }
  if (getrlimit(RLIMIT_AS, &rl) == 0) h.address_space = limit_value(rl.rlim_cur);
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0, total = 0, swap = 0, commit_limit = 0, committed = 0;
  while (meminfo >> key >> kib) {
    if (key == "MemTotal:") total = kib;
    else if (key == "SwapTotal:") swap = kib;
    else if (key == "CommitLimit:") commit_limit = kib;
    else if (key == "Committed_AS:") committed = kib;
    meminfo.ignore(64, '\n');
  }
  h.memory = (total + swap) * 1024;
  if (commit_limit > committed) h.commit_free = (commit_limit - committed) * 1024;
  return h;
}

AsyncPlan plan_async(const Config& cfg, const HostLimits& h, std::uint64_t fiber_mappings,
                     std::uint64_t fiber_reserve) {
  AsyncPlan plan;
  // Cores per worker: --async on each of its --threads.
  const auto cores = static_cast<std::uint64_t>(cfg.async > 0 ? cfg.async : 1) *
                     static_cast<std::uint64_t>(cfg.threads > 0 ? cfg.threads : 1);
  const auto workers = static_cast<std::uint64_t>(cfg.processes > 0 ? cfg.processes : 1);

  const std::uint64_t mappings = fiber_mappings + h.mappings_in_use + kSpareMappings;
  if (h.max_map_count > 0 && fiber_mappings > 0 && mappings > h.max_map_count) {
    plan.refusal = "--async " + std::to_string(cfg.async) + ": the fiber stacks need about " +
                   std::to_string(mappings) + " memory mappings per worker but vm.max_map_count is " +
                   std::to_string(h.max_map_count) +
                   "; lower --async, or raise the limit (sysctl -w vm.max_map_count=" +
                   std::to_string(mappings * 2) + ")";
    return plan;
  }
  const std::uint64_t floor = cores * workers * kCoreFloor;
  if (h.memory > 0 && floor > h.memory) {
    plan.refusal = async_label(cfg) + " needs at least " + amount(floor) +
                   " when every core is in use, more than this machine's " + amount(h.memory) +
                   " of memory and swap; lower --async or --processes";
    return plan;
  }
  const std::uint64_t reserve = cores * fiber_reserve;
  if (h.address_space > 0 && reserve > 0 && reserve + (256ull << 20) > h.address_space) {
    plan.refusal = "--async " + std::to_string(cfg.async) + ": the fiber stacks reserve " +
                   amount(reserve) + " of address space per worker but ulimit -v allows " +
                   amount(h.address_space) +
                   "; lower --fiber-stack-size or --async, or raise ulimit -v";
    return plan;
  }
  if (h.overcommit == 2 && reserve > 0 && reserve * workers > h.commit_free) {
    plan.refusal = async_label(cfg) + ": the fiber stacks reserve " + amount(reserve * workers) +
                   " but vm.overcommit_memory is 2 (strict) and only " + amount(h.commit_free) +
                   " can still be committed; lower --fiber-stack-size or --async";
    return plan;
  }

  const std::uint64_t fds = cores + kSpareFds;
  if (h.nofile_soft > 0 && h.nofile_soft < fds) {
    plan.nofile_soft = h.nofile_hard == 0 ? fds : std::min(fds, h.nofile_hard);
    if (plan.nofile_soft <= h.nofile_soft) plan.nofile_soft = 0;
  }
  if (h.nofile_hard > 0 && h.nofile_hard < fds) {
    const std::uint64_t conns = h.nofile_hard > kSpareFds ? h.nofile_hard - kSpareFds : 0;
    plan.warnings.push_back("--async " + std::to_string(cfg.async) +
                            ": the open-file limit (ulimit -n " + std::to_string(h.nofile_hard) +
                            ") lets a worker hold about " + std::to_string(conns) +
                            " connections at once; raise it to give every core one");
  }
  return plan;
}

std::string check_async_limits(const Config& cfg, bool fibers) {
  const auto cores = static_cast<std::size_t>(cfg.async > 0 ? cfg.async : 1) *
                     static_cast<std::size_t>(cfg.threads > 0 ? cfg.threads : 1);
  HostLimits h = read_host_limits();
  AsyncPlan plan =
      plan_async(cfg, h, fibers ? fibers::fiber_stack_mappings(cores, cfg.fiber_stack_size) : 0,
                 fibers ? fibers::fiber_stack_reserve(cfg.fiber_stack_size) : 0);
  if (!plan.refusal.empty()) return plan.refusal;
  if (plan.nofile_soft > 0) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
      rl.rlim_cur = static_cast<rlim_t>(plan.nofile_soft);
      if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log(Level::kWarn, "cannot raise the open-file limit to %llu: %s",
            static_cast<unsigned long long>(plan.nofile_soft), strerror(errno));
    }
  }
  for (const std::string& w : plan.warnings) log(Level::kWarn, "%s", w.c_str());
  return {};
}

}  // namespace spindle::core
