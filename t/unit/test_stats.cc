// The stats pieces that need no running server: the JSON reader of `spindle
// top` against the stats JSON the master writes, the shared slots a worker
// publishes into (the request line behind its sequence counter, the latency
// histogram, in-flight accounting), and how an exit is classified.
#include <sys/wait.h>

#include <string>

#include "core/config.hh"
#include "core/json.hh"
#include "core/stats.hh"
#include "core/stats_report.hh"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
}

namespace {

using spindle::core::JsonValue;
namespace stats = spindle::core::stats;

stats::Region& region() {
  // One region for the whole program (create_region maps it once).
  static stats::Region* r = [] {
    spindle::core::Config cfg;
    cfg.processes = 2;
    cfg.async = 3;
    return &stats::create_region(cfg);
  }();
  return *r;
}

void test_json_values(void**) {
  JsonValue v;
  std::string err;
  assert_true(JsonValue::parse(
      R"({"a": 1, "b": [true, null, -2.5e1], "s": "x\"y\\z\n\u00e9", "o": {}})", &v, &err));
  assert_int_equal(v["a"].integer(), 1);
  assert_int_equal(v["b"].items().size(), 3);
  assert_true(v["b"][1].is_null());
  assert_true(v["b"][2].number() == -25.0);
  assert_string_equal(v["s"].str().c_str(), "x\"y\\z\n\xc3\xa9");
  // Missing keys and indexes read as null, so lookups chain.
  assert_true(v["nope"]["deeper"][3].is_null());
  assert_int_equal(v["nope"].integer(7), 7);
}

void test_json_errors(void**) {
  JsonValue v;
  std::string err;
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "\"open", "1 2", "tru", "{\"a\":1,}"}) {
    err.clear();
    assert_false(JsonValue::parse(bad, &v, &err));
    assert_false(err.empty());
  }
  std::string deep(100, '[');
  assert_false(JsonValue::parse(deep, &v, &err));
}

void test_published_request_and_histogram(void**) {
  stats::Region& r = region();
  stats::worker_spawning(1);
  stats::attach_worker(1);
  stats::request_begin(2, "GET /slow?x=1 HTTP/1.1");
  assert_int_equal(stats::get(r.worker(1).in_flight), 1);
  assert_string_equal(stats::read_line(r.core(1, 2)).c_str(), "GET /slow?x=1 HTTP/1.1");
  assert_true(stats::get(r.core(1, 2).started_mono_ms) > 0);
  // A request line longer than the slot is cut, never overrun.
  stats::request_end(2, 200, 14, 0.003);
  stats::request_begin(2, std::string(1000, 'a'));
  assert_int_equal(stats::read_line(r.core(1, 2)).size(), spindle::core::kLineSize - 1);
  stats::request_end(2, 503, 0, 20.0);
  const auto& w = r.worker(1);
  assert_int_equal(stats::get(w.in_flight), 0);
  assert_int_equal(stats::get(w.requests), 2);
  assert_int_equal(stats::get(w.status[2]), 1);
  assert_int_equal(stats::get(w.status[5]), 1);
  assert_int_equal(stats::get(w.tx), 14);
  // 3 ms lands in the 5 ms bucket; 20 s beyond the last bound (+Inf).
  assert_int_equal(stats::get(w.buckets[2]), 1);
  assert_int_equal(stats::get(w.buckets[stats::kBucketCount]), 1);
  assert_int_equal(stats::get(r.core(1, 2).requests), 2);
  assert_int_equal(stats::get(r.core(1, 2).started_mono_ms), 0);
}

void test_exit_reasons(void**) {
  stats::Region& r = region();
  stats::worker_spawning(2);
  // killed by the master for harakiri
  stats::put(r.worker(2).kill_reason, static_cast<std::uint8_t>(stats::ExitReason::kHarakiri));
  assert_int_equal(static_cast<int>(stats::worker_exited(2, SIGKILL)),
                   static_cast<int>(stats::ExitReason::kHarakiri));
  // a clean exit after the worker said why: max-requests
  stats::worker_spawning(2);
  assert_int_equal(stats::get(r.worker(2).respawn_count), 2);
  stats::attach_worker(2);
  stats::set_exit_reason(stats::ExitReason::kMaxRequests);
  assert_int_equal(static_cast<int>(stats::worker_exited(2, 0)),
                   static_cast<int>(stats::ExitReason::kMaxRequests));
  // a signal nobody sent on purpose, and a failed exit
  stats::worker_spawning(2);
  assert_int_equal(static_cast<int>(stats::worker_exited(2, SIGSEGV)),
                   static_cast<int>(stats::ExitReason::kCrash));
  assert_int_equal(static_cast<int>(stats::worker_exited(2, 3 << 8)),
                   static_cast<int>(stats::ExitReason::kExit));
  assert_int_equal(r.restarts[static_cast<int>(stats::ExitReason::kHarakiri)], 1);
}

void test_stats_json_reads_back(void**) {
  region();
  std::vector<spindle::core::Listener> none;
  JsonValue d;
  std::string err;
  std::string text = stats::json(none);
  assert_true(JsonValue::parse(text, &d, &err));
  assert_int_equal(d["workers"].items().size(), 2);
  assert_int_equal(d["workers"][0]["cores"].items().size(), 3);
  assert_int_equal(d["workers"][1]["cores"].items().size(), 0);  // never took a request
  assert_int_equal(d["workers"][0]["id"].integer(), 1);
  assert_true(d["respawns"]["harakiri"].integer() >= 1);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_values),
      cmocka_unit_test(test_json_errors),
      cmocka_unit_test(test_published_request_and_histogram),
      cmocka_unit_test(test_exit_reasons),
      cmocka_unit_test(test_stats_json_reads_back),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
