// The Prometheus text exposition format (version 0.0.4), from the shared
// slots: what a scrape every few seconds needs to chart a server and alert
// on it. Per-worker series carry a `worker` label; the latency histogram is
// the sum over the workers (histograms add up bucket by bucket).
#include <cstdio>
#include <string>

#include "core/stats.hh"
#include "core/stats_report.hh"

namespace spindle::core::stats {

namespace {

void head(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const char* name, const std::string& labels, double v) {
  char num[64];
  // Integers print exactly; %.17g keeps the rest round-trippable.
  if (v == static_cast<double>(static_cast<long long>(v)))
    snprintf(num, sizeof num, "%lld", static_cast<long long>(v));
  else
    snprintf(num, sizeof num, "%.17g", v);
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += num;
  out += '\n';
}

std::string label(const char* k, const std::string& v) {
  std::string out = k;
  out += "=\"";
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  out += '"';
  return out;
}

std::string worker_label(int id) { return label("worker", std::to_string(id)); }

}  // namespace

std::string metrics(const std::vector<Listener>& listeners) {
  std::string out;
  Region* r = region();
  if (!r) return out;
  static const char* kClasses[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};

  head(out, "spindle_requests_total", "counter", "Requests answered, by worker and status class.");
  for (int id = 1; id <= r->processes; ++id)
    for (int c = 0; c < 6; ++c)
      sample(out, "spindle_requests_total", worker_label(id) + "," + label("code", kClasses[c]),
             static_cast<double>(get(r->worker(id).status[c])));

  head(out, "spindle_request_duration_seconds", "histogram",
       "Time from a request's head to the end of its response.");
  std::uint64_t cumulative = 0, count = 0;
  double sum = 0;
  std::uint64_t per_bucket[kBucketCount + 1] = {};
  for (int id = 1; id <= r->processes; ++id) {
    const WorkerSlot& w = r->worker(id);
    for (int b = 0; b <= kBucketCount; ++b) per_bucket[b] += get(w.buckets[b]);
    sum += static_cast<double>(get(w.running_us)) / 1e6;
  }
  for (int b = 0; b <= kBucketCount; ++b) {
    cumulative += per_bucket[b];
    char le[32];
    if (b < kBucketCount)
      snprintf(le, sizeof le, "%g", kBuckets[b]);
    else
      snprintf(le, sizeof le, "+Inf");
    sample(out, "spindle_request_duration_seconds_bucket", label("le", le),
           static_cast<double>(cumulative));
  }
  count = cumulative;
  sample(out, "spindle_request_duration_seconds_sum", "", sum);
  sample(out, "spindle_request_duration_seconds_count", "", static_cast<double>(count));

  head(out, "spindle_response_bytes_total", "counter", "Response body bytes sent, by worker.");
  for (int id = 1; id <= r->processes; ++id)
    sample(out, "spindle_response_bytes_total", worker_label(id),
           static_cast<double>(get(r->worker(id).tx)));

  head(out, "spindle_requests_in_flight", "gauge", "Requests being served, by worker.");
  for (int id = 1; id <= r->processes; ++id)
    sample(out, "spindle_requests_in_flight", worker_label(id),
           static_cast<double>(get(r->worker(id).in_flight)));

  head(out, "spindle_cores", "gauge",
       "Async cores holding a request, by worker and by what they do: running, or parked on "
       "read, write, timer, wait (a future or suspend), ready (re-queued).");
  for (int id = 1; id <= r->processes; ++id) {
    std::uint64_t by_state[kStates] = {};
    for (int c = 0, n = r->cores_seen(id); c < n; ++c) {
      const CoreStat& cs = r->core(id, c);
      if (!get(cs.started_mono_ms)) continue;
      int s = get(cs.state);
      if (s > 0 && s < kStates) ++by_state[s];
    }
    for (int s = 1; s < kStates; ++s)
      sample(out, "spindle_cores",
             worker_label(id) + "," + label("state", state_name(static_cast<CoreState>(s))),
             static_cast<double>(by_state[s]));
  }

  head(out, "spindle_connections_queued", "gauge",
       "Connections whose request waits for a free core, by worker.");
  for (int id = 1; id <= r->processes; ++id)
    sample(out, "spindle_connections_queued", worker_label(id),
           static_cast<double>(get(r->worker(id).queued)));

  head(out, "spindle_connections_open", "gauge", "Open client connections, by worker.");
  for (int id = 1; id <= r->processes; ++id)
    sample(out, "spindle_connections_open", worker_label(id),
           static_cast<double>(get(r->worker(id).connections)));

  head(out, "spindle_worker_rss_bytes", "gauge", "Resident memory of each worker.");
  for (int id = 1; id <= r->processes; ++id)
    sample(out, "spindle_worker_rss_bytes", worker_label(id),
           static_cast<double>(proc_mem(get(r->worker(id).pid)).rss));

  head(out, "spindle_worker_restarts_total", "counter",
       "Workers replaced since the master started, by reason.");
  for (int i = 1; i < static_cast<int>(ExitReason::kCount); ++i)
    sample(out, "spindle_worker_restarts_total",
           label("reason", reason_name(static_cast<ExitReason>(i))),
           static_cast<double>(r->restarts[i]));

  head(out, "spindle_reloads_total", "counter", "Graceful reloads (SIGHUP) so far.");
  sample(out, "spindle_reloads_total", "", static_cast<double>(r->reloads));

  head(out, "spindle_listen_queue", "gauge",
       "Connections waiting in the kernel's accept queue, by socket (TCP sockets only).");
  for (const Listener& l : listeners)
    sample(out, "spindle_listen_queue", label("socket", l.bound),
           static_cast<double>(backlog(l).queue));
  return out;
}

}  // namespace spindle::core::stats
