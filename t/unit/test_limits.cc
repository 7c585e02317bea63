// Unit tests for the start-up check of --async against the host's limits
// (core/limits.cc), with made-up hosts: each limit refuses on its own, with
// one line naming it and its remedy, and a host that fits refuses nothing.
#include <cstdint>
#include <string>

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

#include "core/config.hh"
#include "core/limits.hh"

namespace {

using spindle::core::AsyncPlan;
using spindle::core::Config;
using spindle::core::HostLimits;
using spindle::core::plan_async;

constexpr std::uint64_t kGiB = 1ull << 30;
constexpr std::uint64_t kStack = (2ull << 20) + 4096;  // a 2 MiB stack and its guard

HostLimits roomy() {
  HostLimits h;
  h.max_map_count = 65530;
  h.mappings_in_use = 100;
  h.nofile_soft = 200000;
  h.nofile_hard = 200000;
  h.memory = 24 * kGiB;
  h.commit_free = 12 * kGiB;
  return h;
}

Config with_async(int n, int processes = 1) {
  Config c;
  c.async = n;
  c.processes = processes;
  return c;
}

bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

void test_roomy_host_refuses_nothing(void** state) {
  AsyncPlan p = plan_async(with_async(100000), roomy(), 800, kStack);
  assert_true(p.refusal.empty());
  assert_true(p.warnings.empty());
  assert_int_equal(p.nofile_soft, 0);
}

void test_map_count_refuses_with_its_remedy(void** state) {
  // A kernel without guard markers: two mappings per stack.
  AsyncPlan p = plan_async(with_async(50000), roomy(), 100000, kStack);
  assert_true(has(p.refusal, "--async 50000"));
  assert_true(has(p.refusal, "vm.max_map_count is 65530"));
  assert_true(has(p.refusal, "sysctl -w vm.max_map_count="));
  assert_true(p.refusal.find('\n') == std::string::npos);
  // The same --async with slabs and guard markers fits.
  assert_true(plan_async(with_async(50000), roomy(), 400, kStack).refusal.empty());
}

void test_memory_counts_every_worker(void** state) {
  HostLimits h = roomy();
  h.memory = 4 * kGiB;
  assert_true(plan_async(with_async(100000, 4), h, 800, kStack).refusal.empty());  // 3.1 GiB
  AsyncPlan p = plan_async(with_async(100000, 8), h, 800, kStack);                // 6.1 GiB
  assert_true(has(p.refusal, "with 8 workers"));
  assert_true(has(p.refusal, "memory"));
  assert_true(has(p.refusal, "lower --async or --processes"));
}

void test_address_space_limit(void** state) {
  HostLimits h = roomy();
  h.address_space = 4 * kGiB;
  AsyncPlan p = plan_async(with_async(10000), h, 100, kStack);
  assert_true(has(p.refusal, "ulimit -v"));
  assert_true(has(p.refusal, "--fiber-stack-size"));
  // Engines without fiber stacks reserve nothing.
  assert_true(plan_async(with_async(10000), h, 0, 0).refusal.empty());
}

void test_strict_overcommit(void** state) {
  HostLimits h = roomy();
  h.overcommit = 2;
  h.commit_free = 8 * kGiB;
  AsyncPlan p = plan_async(with_async(10000), h, 100, kStack);
  assert_true(has(p.refusal, "vm.overcommit_memory is 2"));
  h.overcommit = 0;
  assert_true(plan_async(with_async(10000), h, 100, kStack).refusal.empty());
}

void test_open_files_raised_then_warned(void** state) {
  HostLimits h = roomy();
  h.nofile_soft = 1024;
  h.nofile_hard = 524288;
  AsyncPlan p = plan_async(with_async(5000), h, 100, kStack);
  assert_true(p.refusal.empty());
  assert_int_equal(p.nofile_soft, 5000 + spindle::core::kSpareFds);
  assert_true(p.warnings.empty());
  h.nofile_hard = 20000;
  p = plan_async(with_async(100000), h, 800, kStack);
  assert_true(p.refusal.empty());  // cores also serve work that holds no socket
  assert_int_equal(p.nofile_soft, 20000);
  assert_int_equal(p.warnings.size(), 1);
  assert_true(has(p.warnings[0], "ulimit -n 20000"));
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roomy_host_refuses_nothing),
      cmocka_unit_test(test_map_count_refuses_with_its_remedy),
      cmocka_unit_test(test_memory_counts_every_worker),
      cmocka_unit_test(test_address_space_limit),
      cmocka_unit_test(test_strict_overcommit),
      cmocka_unit_test(test_open_files_raised_then_warned),
  };
  return cmocka_run_group_tests_name("limits", tests, nullptr, nullptr);
}
