// uWSGI's stats JSON, from the shared slots. Field names and units follow
// uWSGI (avg_rt and running_time in microseconds, rss and vsz in bytes,
// last_spawn in unix seconds) so its clients read ours unchanged.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/stats.hh"
#include "core/stats_report.hh"

namespace spindle::core::stats {

namespace {

class Json {
 public:
  std::string out;

  Json& open(char c) {
    comma();
    out += c;
    first_ = true;
    return *this;
  }
  Json& close(char c) {
    out += c;
    first_ = false;
    return *this;
  }
  Json& key(const char* k) {
    comma();
    str(k);
    out += ':';
    first_ = true;  // the value follows without a comma
    return *this;
  }
  Json& num(const char* k, std::uint64_t v) {
    key(k);
    return raw_num(v);
  }
  Json& snum(const char* k, std::int64_t v) {
    key(k);
    comma();
    out += std::to_string(v);
    return *this;
  }
  Json& text(const char* k, std::string_view v) {
    key(k);
    comma();
    str(v);
    return *this;
  }
  Json& raw_num(std::uint64_t v) {
    comma();
    out += std::to_string(v);
    return *this;
  }

 private:
  void comma() {
    if (!first_) out += ',';
    first_ = false;
  }
  void str(std::string_view s) {
    out += '"';
    for (unsigned char c : s) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20 || c == 0x7f) {
        char esc[8];
        snprintf(esc, sizeof esc, "\\u%04x", c);
        out += esc;
      } else {
        out += static_cast<char>(c);  // UTF-8 passes through; a request line is bytes
      }
    }
    out += '"';
  }
  bool first_ = true;
};

std::int64_t now_ms_wall() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

ProcMem proc_mem(pid_t pid) {
  ProcMem m;
  if (pid <= 0) return m;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/statm", static_cast<int>(pid));
  FILE* f = fopen(path, "re");
  if (!f) return m;
  unsigned long long size = 0, resident = 0;
  if (fscanf(f, "%llu %llu", &size, &resident) == 2) {
    std::uint64_t page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
    m.vsz = size * page;
    m.rss = resident * page;
  }
  fclose(f);
  return m;
}

Backlog backlog(const Listener& l) {
  Backlog b;
  if (l.unix_socket || l.fd < 0) return b;
  // For a listening TCP socket Linux reports the accept queue's length in
  // tcpi_unacked and its limit in tcpi_sacked.
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(l.fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0) {
    b.queue = info.tcpi_unacked;
    b.max = info.tcpi_sacked;
  }
  return b;
}

std::string json(const std::vector<Listener>& listeners) {
  Region* r = region();
  Json j;
  j.open('{');
  j.text("version", "spindle-0.1.0");
  std::uint64_t lq = 0;
  for (const Listener& l : listeners) lq += backlog(l).queue;
  j.num("listen_queue", lq);
  j.num("listen_queue_errors", 0);
  j.num("signal_queue", 0);
  std::uint64_t load = 0, queued = 0;
  if (r)
    for (int id = 1; id <= r->processes; ++id) {
      load += get(r->worker(id).in_flight);
      queued += get(r->worker(id).queued);
    }
  j.num("load", load);
  j.num("pid", static_cast<std::uint64_t>(getpid()));
  j.num("uid", getuid());
  j.num("gid", getgid());
  char cwd[4096];
  j.text("cwd", getcwd(cwd, sizeof cwd) ? cwd : "");
  // spindle's own.
  j.num("queued", queued);
  j.num("reloads", r ? r->reloads : 0);
  j.key("respawns").open('{');
  for (int i = 1; i < static_cast<int>(ExitReason::kCount); ++i)
    j.num(reason_name(static_cast<ExitReason>(i)), r ? r->restarts[i] : 0);
  j.close('}');
  j.key("locks").open('[').close(']');

  j.key("sockets").open('[');
  for (const Listener& l : listeners) {
    Backlog b = backlog(l);
    j.open('{');
    j.text("name", l.bound);
    j.text("proto", l.proto == Proto::kHttp ? "http" : "uwsgi");
    j.num("queue", b.queue);
    j.num("max_queue", b.max);
    j.num("shared", 0);
    j.num("can_offload", 0);
    j.close('}');
  }
  j.close(']');

  j.key("workers").open('[');
  std::int64_t now_wall = now_ms_wall();
  std::int64_t now_mono = monotonic_ms();
  for (int id = 1; r && id <= r->processes; ++id) {
    const WorkerSlot& w = r->worker(id);
    pid_t pid = get(w.pid);
    ProcMem mem = proc_mem(pid);
    std::uint32_t inflight = get(w.in_flight);
    j.open('{');
    j.num("id", static_cast<std::uint64_t>(id));
    j.num("pid", static_cast<std::uint64_t>(pid));
    j.num("accepting", get(w.accepting));
    j.num("requests", get(w.requests));
    j.num("delta_requests", 0);
    j.num("exceptions", get(w.exceptions));
    j.num("harakiri_count", get(w.harakiri_count));
    j.num("signals", 0);
    j.num("signal_queue", 0);
    j.text("status", inflight ? "busy" : "idle");
    j.num("rss", mem.rss);
    j.num("vsz", mem.vsz);
    j.num("uss", 0);
    j.num("pss", 0);
    j.num("running_time", get(w.running_us));
    j.snum("last_spawn", get(w.last_spawn));
    j.num("respawn_count", get(w.respawn_count));
    j.num("tx", get(w.tx));
    j.num("avg_rt", get(w.avg_rt_us));
    j.key("apps").open('[');
    j.open('{');
    j.num("id", 0);
    j.num("modifier1", 0);
    j.text("mountpoint", "");
    j.num("startup_time", 0);
    j.num("requests", get(w.requests));
    j.num("exceptions", get(w.exceptions));
    j.text("chdir", "");
    j.close('}');
    j.close(']');
    // spindle's own.
    j.num("in_flight", inflight);
    j.num("queued", get(w.queued));
    j.num("connections", get(w.connections));
    j.snum("running_core", any_running_core(id));
    j.key("cores").open('[');
    for (int c = 0, n = r->cores_seen(id); c < n; ++c) {
      const CoreStat& cs = r->core(id, c);
      auto state = static_cast<CoreState>(get(cs.state));
      std::int64_t started = get(cs.started_mono_ms);
      bool in_request = started != 0;
      std::int64_t ms = in_request ? std::max<std::int64_t>(0, now_mono - started) : 0;
      j.open('{');
      j.num("id", static_cast<std::uint64_t>(c));
      j.num("requests", get(cs.requests));
      j.num("static_requests", 0);
      j.num("routed_requests", 0);
      j.num("offloaded_requests", 0);
      j.num("write_errors", get(cs.write_errors));
      j.num("read_errors", get(cs.read_errors));
      j.num("in_request", in_request ? 1 : 0);
      j.key("vars").open('[').close(']');
      j.key("req_info").open('{');
      if (in_request) j.snum("request_start", (now_wall - ms) / 1000);
      j.close('}');
      j.text("state", state_name(in_request ? state : CoreState::kIdle));
      if (in_request) {
        j.text("request", read_line(cs));
        j.snum("request_ms", ms);
      }
      j.close('}');
    }
    j.close(']');
    j.close('}');
  }
  j.close(']');
  j.snum("time", now_wall / 1000);
  j.close('}');
  j.out += '\n';
  return std::move(j.out);
}

}  // namespace spindle::core::stats
