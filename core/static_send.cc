#include "core/static_send.hh"

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "core/log.hh"
#include "core/protocol.hh"
#include "core/transport.hh"
#include "core/worker.hh"

namespace spindle::core {

namespace {

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 304:
      return "Not Modified";
    case 403:
      return "Forbidden";
    case 416:
      return "Range Not Satisfiable";
    default:
      return "Unknown";
  }
}

}  // namespace

void StaticSend::begin(StaticAnswer&& a, bool keep_alive, bool announce_keep_alive,
                       bool head_only) {
  reset();
  status_ = a.status;
  body_sent_ = 0;
  head_ = "HTTP/1.1 " + std::to_string(a.status) + " " + reason(a.status) + "\r\n";
  head_ += a.fields;
  if (!keep_alive) {
    head_ += "Connection: close\r\n";
  } else if (announce_keep_alive) {
    head_ += "Connection: keep-alive\r\n";
  }
  head_ += "\r\n";
  head_off_ = 0;
  if (a.kind == StaticAnswer::kFile && !head_only) {
    file_ = a.fd;
    offset_ = a.offset;
    left_ = a.length;
  } else if (a.fd >= 0) {
    close(a.fd);
  }
  a.fd = -1;
  active_ = true;
}

StaticSend::Result StaticSend::pump(int sock) {
  while (head_off_ < head_.size()) {
    // MSG_MORE: the head and the file's first bytes share a packet.
    int more = left_ > 0 ? MSG_MORE : 0;
    ssize_t n =
        ::send(sock, head_.data() + head_off_, head_.size() - head_off_, MSG_NOSIGNAL | more);
    if (n > 0) {
      head_off_ += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return kAgain;
    return kError;
  }
  while (left_ > 0) {
    std::size_t chunk = left_ > (1u << 30) ? (1u << 30) : static_cast<std::size_t>(left_);
    ssize_t n = ::sendfile(sock, file_, &offset_, chunk);
    if (n > 0) {
      left_ -= static_cast<std::uint64_t>(n);
      body_sent_ += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return kAgain;
    return kError;  // 0: the file shrank under us; the framing cannot be kept
  }
  reset();
  return kDone;
}

void StaticSend::reset() {
  if (file_ >= 0) close(file_);
  file_ = -1;
  left_ = 0;
  head_.clear();
  head_off_ = 0;
  active_ = false;
}

// --- the protocol's side ------------------------------------------------------

namespace {

double mono_now() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string_view find(std::span<const Var> vars, std::string_view name) {
  for (const Var& v : vars)
    if (v.name == name) return v.value;
  return {};
}

}  // namespace

bool Protocol::try_static(std::span<const Var> vars, bool keep_alive, bool announce_keep_alive,
                          std::string_view request_line) {
  StaticRequest r;
  r.method = find(vars, "REQUEST_METHOD");
  r.path = find(vars, "PATH_INFO");
  r.if_modified_since = find(vars, "HTTP_IF_MODIFIED_SINCE");
  r.range = find(vars, "HTTP_RANGE");
  r.if_range = find(vars, "HTTP_IF_RANGE");
  StaticAnswer a = t_.worker().static_files().lookup(r);
  if (a.kind == StaticAnswer::kPass) return false;
  // Kept whatever --disable-logging says: --log-4xx and the like decide
  // once the status is known.
  if (!static_) static_ = std::make_unique<StaticState>();
  StaticState& st = *static_;
  st.access.keep(vars, request_line);
  st.started = mono_now();
  st.keep_alive = keep_alive && !t_.worker().draining();
  a.fields += origin_fields();
  st.send.begin(std::move(a), st.keep_alive, announce_keep_alive, r.method == "HEAD");
  pump_static();
  return true;
}

void Protocol::on_writable() {
  if (static_) pump_static();
}

void Protocol::pump_static() {
  StaticState& st = *static_;
  StaticSend::Result res = st.send.pump(t_.fd());
  if (res == StaticSend::kAgain) {
    t_.wait_writable();
    return;
  }
  const double took = mono_now() - st.started;
  if (access_wanted(t_.worker().cfg().disable_logging, st.send.status(), took)) {
    AccessRecord r{st.access.vars(), t_.peer_addr(), st.access.line(), st.send.status(),
                   st.send.body_sent()};
    r.cut = res == StaticSend::kError;
    r.head_bytes = r.cut ? 0 : st.send.head().size();
    r.headers = count_head_fields(st.send.head());
    r.seconds = took;
    r.worker = t_.worker().id();
    log_request(r);
  }
  if (res == StaticSend::kError) {
    st.send.reset();
    t_.reset_on_close();  // the file shrank: short of its Content-Length
    t_.close();
    return;
  }
  static_done(st.keep_alive);
}

}  // namespace spindle::core
