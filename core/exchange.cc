// The Exchange: one request and its response, run on an async core. The
// response's progress is one ResponseState; every call that would block
// parks the core (through the transport). See exchange.hh.
#include "core/exchange.hh"

#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include <cstring>

#include "core/access_log.hh"
#include "core/config.hh"
#include "core/http_date.hh"
#include "core/log.hh"
#include "core/park.hh"
#include "core/protocol.hh"
#include "core/scheduler.hh"
#include "core/stats.hh"
#include "core/text.hh"
#include "core/transport.hh"
#include "core/worker.hh"
#include "core/worker_slot.hh"

namespace spindle::core {

namespace {

double mono_now() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

bool is_token_char(unsigned char c) {
  if (c <= 32 || c >= 127) return false;
  return !strchr("()<>@,;:\\\"/[]?={}", c);
}

}  // namespace

// --- serving --------------------------------------------------------------

void Exchange::run(Core& core) {
  Worker& worker = t_.worker();
  core_ = &core;
  for (;;) {
    reset();
    proto_.begin(*this);
    stats::request_begin(core.id, req.line);
    if (App* app = worker.app()) app->handle(*this);
    if (state_ == ResponseState::kHeadPending && status_ == 0) fail(500);
    if (state_ < ResponseState::kDone) finish();
    record_done();
    worker.request_done();
    // A stop that began after the head went out (with keep-alive): the
    // connection may carry one more request, which the transport's drain
    // grace waits for and answers with Connection: close.
    const bool reuse = req.keep_alive && state_ != ResponseState::kAborted;
    if (!proto_.next(*this, reuse)) break;
    // Let the other cores and the loop run between pipelined requests.
    yield_now();
  }
  core_ = nullptr;
}

void Exchange::reset() {
  state_ = ResponseState::kHeadPending;
  held_.clear();
  chunked_ = app_length_ = hint_ = no_body_ = false;
  app_length_value_ = hint_value_ = body_sent_ = 0;
  status_ = 0;
  error_.clear();
  head_bytes_ = 0;
  head_fields_count_ = read_errors_ = 0;
  logvars.store.clear();
  logvars.view.clear();
  switches_at_start_ = core_ ? core_->switches : 0;
  req.modifier2 = 0;
  written_at_start_ = t_.bytes_written();
  started_at_ = mono_now();
}

void Exchange::record_done() {
  double took = mono_now() - started_at_;
  stats::request_end(core_->id, status_, body_sent_, took);
  if (!access_wanted(t_.worker().cfg().disable_logging, status_, took)) return;
  AccessRecord r{req.vars, t_.peer_addr(), req.line, status_, body_sent_, head_bytes_};
  if (state_ == ResponseState::kAborted) {
    // What reached the socket, not what the app produced.
    const std::uint64_t wire = t_.bytes_written() - written_at_start_;
    r.cut = true;
    r.head_bytes = wire < head_bytes_ ? wire : head_bytes_;
    r.body_bytes = wire - r.head_bytes;
  }
  r.seconds = took;
  r.headers = head_fields_count_;
  r.read_errors = read_errors_;
  r.switches = core_->switches - switches_at_start_ + 1;  // + the one that started it
  r.modifier2 = req.modifier2;
  r.logvars = logvars.view;
  r.core = core_->id;
  r.worker = t_.worker().id();
  log_request(r);
}

ssize_t Exchange::read(char* buf, std::size_t n) {
  if (n == 0) return 0;
  return proto_.read_body(*this, buf, n);
}

bool Exchange::abort(std::string why) {
  if (state_ != ResponseState::kAborted && core_) stats::io_error(core_->id, true);
  held_.clear();
  error_ = std::move(why);
  req.keep_alive = false;
  state_ = ResponseState::kAborted;
  return false;
}

bool Exchange::send(iovec* iov, int cnt) {
  std::string why;
  if (t_.send(iov, cnt, &why)) return true;
  return abort(std::move(why));
}

// --- response -------------------------------------------------------------

// A status line longer than this (a reason phrase built from request data,
// say) is an app bug, not something to send: clients cap it too.
constexpr std::size_t kMaxStatusLine = 512;

bool Exchange::start_response(std::string_view status, std::span<const Header> headers,
                              std::string* why) {
  if (head_sent()) {
    *why = "start_response called after the response head was sent";
    return false;
  }
  if (status.size() < 3 || !isdigit(static_cast<unsigned char>(status[0])) ||
      !isdigit(static_cast<unsigned char>(status[1])) ||
      !isdigit(static_cast<unsigned char>(status[2])) || (status.size() > 3 && status[3] != ' ')) {
    *why = "malformed status '" + std::string(status.substr(0, 64)) + "'";
    return false;
  }
  // RFC 9112 4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ).
  for (char c : status) {
    auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f) {
      *why = "control character in status";
      return false;
    }
  }
  if (status.size() > kMaxStatusLine) {
    *why = "status line over " + std::to_string(kMaxStatusLine) + " bytes";
    return false;
  }
  int code = (status[0] - '0') * 100 + (status[1] - '0') * 10 + (status[2] - '0');
  if (code > 599) {
    *why = "status " + std::string(status.substr(0, 3)) + " is outside 100-599";
    return false;
  }
  if (code < 200) {
    // A 1xx is interim: sent as the final answer, the client would read the
    // next response as this one's.
    *why = "1xx is not a final status";
    return false;
  }
  head_fields_.clear();
  app_length_ = app_date_ = app_server_ = false;
  bool close = false;
  for (const Header& h : headers) {
    if (h.name.empty()) {
      *why = "empty header name";
      return false;
    }
    for (char c : h.name) {
      if (!is_token_char(static_cast<unsigned char>(c))) {
        *why = "invalid character in header name '" + std::string(h.name.substr(0, 64)) + "'";
        return false;
      }
    }
    for (char c : h.value) {
      if (c == '\r' || c == '\n' || c == '\0') {
        *why = "control character in the value of header '" + std::string(h.name) + "'";
        return false;
      }
    }
    if (iequals(h.name, "content-length")) {
      if (app_length_) {
        *why = "more than one Content-Length";
        return false;
      }
      if (!parse_u64(h.value, &app_length_value_)) {
        *why = "invalid Content-Length '" + std::string(h.value.substr(0, 32)) + "'";
        return false;
      }
      app_length_ = true;
    } else if (iequals(h.name, "connection")) {
      // Hop-by-hop: the server owns it; honour a request to close.
      if (h.value.find("close") != std::string_view::npos) close = true;
      continue;
    } else if (iequals(h.name, "date")) {
      app_date_ = true;
    } else if (iequals(h.name, "server")) {
      app_server_ = true;
    } else if (iequals(h.name, "transfer-encoding")) {
      *why = "hop-by-hop header Transfer-Encoding set by the application";
      return false;
    }
    head_fields_.append(h.name);
    head_fields_.append(": ");
    head_fields_.append(h.value);
    head_fields_.append("\r\n");
  }
  if (close) req.keep_alive = false;
  status_line_.assign(status);
  if (status_line_.size() == 3) status_line_ += ' ';  // the space is required, the reason is not
  status_ = code;
  no_body_ = req.is_head || code == 204 || code == 304;
  return true;
}

void Exchange::set_length_hint(std::uint64_t n) {
  if (head_sent()) return;
  hint_ = true;
  hint_value_ = n;
}

// Builds the head into out_ (the caller sends it) and moves to kHeadSent.
bool Exchange::send_head(bool final) {
  const Framing f = proto_.framing();
  const bool bodiless_status = status_ == 204 || status_ == 304;
  out_.assign("HTTP/1.1 ");
  out_.append(status_line_);
  out_.append("\r\n");
  out_.append(head_fields_);
  if (f.origin)
    append_origin_fields(&out_, !app_date_, !app_server_ && !t_.worker().cfg().no_server_header);
  char num[48];
  if (app_length_) {
    // passed through as the app gave it
  } else if (hint_ || (final && !req.is_head)) {
    if (!bodiless_status) {
      int k = snprintf(num, sizeof num, "Content-Length: %llu\r\n",
                       static_cast<unsigned long long>(hint_ ? hint_value_ : body_sent_));
      out_.append(num, static_cast<std::size_t>(k));
    }
  } else if (no_body_) {
    // HEAD without a length: nothing to delimit
  } else if (f.chunked) {
    chunked_ = true;
    out_.append("Transfer-Encoding: chunked\r\n");
  } else {
    req.keep_alive = false;  // the close delimits the body
  }
  if (t_.worker().draining()) req.keep_alive = false;
  if (!req.keep_alive) {
    out_.append("Connection: close\r\n");
  } else if (f.announce_keep_alive) {
    out_.append("Connection: keep-alive\r\n");
  }
  out_.append("\r\n");
  head_bytes_ = out_.size();
  head_fields_count_ = count_head_fields(out_);
  state_ = ResponseState::kHeadSent;
  return true;
}

bool Exchange::write(std::string_view data, bool more) {
  if (state_ >= ResponseState::kDone) return false;
  if (status_ == 0) {
    error_ = "write() before start_response()";
    return false;
  }
  if (data.empty()) return true;
  bool overrun = false;
  if (!no_body_ && declared()) {
    std::uint64_t room = room_left();
    if (data.size() > room) {
      data = data.substr(0, room);
      overrun = true;
      req.keep_alive = false;
    }
  }
  iovec iov[5];
  int cnt = 0;
  if (!held_.empty()) iov[cnt++] = {held_.data(), held_.size()};
  if (!head_sent()) {
    send_head(false);
    iov[cnt++] = {out_.data(), out_.size()};
  }
  char chunk[24];
  if (!no_body_) {
    if (chunked_) {
      int k = snprintf(chunk, sizeof chunk, "%zx\r\n", data.size());
      iov[cnt++] = {chunk, static_cast<std::size_t>(k)};
    }
    iov[cnt++] = {const_cast<char*>(data.data()), data.size()};
    if (chunked_) iov[cnt++] = {const_cast<char*>("\r\n"), 2};
    body_sent_ += data.size();
    state_ = ResponseState::kBody;
  }
  std::size_t total = 0;
  for (int i = 0; i < cnt; ++i) total += iov[i].iov_len;
  if (more && !overrun && total <= kHoldMax) {
    const std::int64_t now = monotonic_ms();
    if (held_.empty()) held_since_ms_ = now;
    if (now == held_since_ms_) {  // young enough: keep it for the next write
      for (int i = held_.empty() ? 0 : 1; i < cnt; ++i)
        held_.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      return true;
    }
  }
  bool ok = cnt == 0 || send(iov, cnt);
  held_.clear();
  if (overrun) return overran();
  return ok;
}

bool Exchange::flush() {
  if (held_.empty() || flushing_) return state_ != ResponseState::kAborted;
  flushing_ = true;  // send() may park, and parking flushes
  iovec iov{held_.data(), held_.size()};
  bool ok = send(&iov, 1);
  held_.clear();
  flushing_ = false;
  return ok;
}

std::uint64_t Exchange::room_left() const {
  std::uint64_t want = app_length_ ? app_length_value_ : hint_value_;
  return want > body_sent_ ? want - body_sent_ : 0;
}

// The app produced more body than its Content-Length: the extra bytes
// would be read as the next response on this connection.
bool Exchange::overran() {
  log(Level::kWarn, "\"%s\": the body is longer than its Content-Length; truncated, closing",
      req.line.c_str());
  return abort("response body longer than its Content-Length");
}

bool Exchange::sendfile(int fd, off_t offset, std::uint64_t count) {
  if (state_ >= ResponseState::kDone) return false;
  if (status_ == 0) {
    error_ = "sendfile before start_response()";
    return false;
  }
  if (count == UINT64_MAX) {
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
      error_ = "sendfile: not a regular file";
      return false;
    }
    count = st.st_size > offset ? static_cast<std::uint64_t>(st.st_size - offset) : 0;
  }
  if (!flush()) return false;
  bool overrun = false;
  if (!no_body_ && declared() && count > room_left()) {
    count = room_left();
    overrun = true;
    req.keep_alive = false;
  }
  if (!head_sent()) {
    if (!app_length_ && !hint_) set_length_hint(count);
    send_head(false);
    iovec iov{out_.data(), out_.size()};
    if (!send(&iov, 1)) return false;
  }
  if (no_body_ || count == 0) return overrun ? overran() : true;
  state_ = ResponseState::kBody;
  char chunk[24];
  if (chunked_) {
    int k = snprintf(chunk, sizeof chunk, "%llx\r\n", static_cast<unsigned long long>(count));
    iovec iov{chunk, static_cast<std::size_t>(k)};
    if (!send(&iov, 1)) return false;
  }
  std::string why;
  if (!t_.send_file(fd, &offset, count, &body_sent_, &why)) {
    t_.reset_on_close();  // short of what the head announced
    return abort(std::move(why));
  }
  if (chunked_) {
    iovec iov{const_cast<char*>("\r\n"), 2};
    if (!send(&iov, 1)) return false;
  }
  return overrun ? overran() : true;
}

bool Exchange::finish() {
  if (state_ == ResponseState::kDone) return true;
  if (state_ == ResponseState::kAborted) return false;
  if (!no_body_ && declared() && room_left() > 0) {
    // The client would wait for bytes that never come, or read the next
    // response as the rest of this one: only a close keeps it in step.
    log(Level::kWarn, "\"%s\": the body is %llu bytes short of its Content-Length; resetting",
        req.line.c_str(), static_cast<unsigned long long>(room_left()));
    req.keep_alive = false;
    t_.reset_on_close();
  }
  bool ok = true;
  if (!head_sent()) {
    send_head(true);
    iovec iov{out_.data(), out_.size()};
    ok = send(&iov, 1);
  } else {
    // The terminating chunk leaves with whatever was held back.
    iovec iov[2];
    int cnt = 0;
    if (!held_.empty()) iov[cnt++] = {held_.data(), held_.size()};
    if (chunked_) iov[cnt++] = {const_cast<char*>("0\r\n\r\n"), 5};
    if (cnt > 0) ok = send(iov, cnt);
    held_.clear();
  }
  if (ok) state_ = ResponseState::kDone;
  return ok;
}

bool Exchange::upgrade(std::string_view head) {
  if (state_ != ResponseState::kHeadPending) return false;
  req.keep_alive = false;
  status_ = 101;
  state_ = ResponseState::kDone;
  iovec iov{const_cast<char*>(head.data()), head.size()};
  if (send(&iov, 1)) return true;
  return false;
}

void Exchange::fail(int status) {
  if (state_ >= ResponseState::kDone) return;
  req.keep_alive = false;
  if (head_sent()) {
    // What the client was promised so far, then a reset: a truncated
    // response is better than a wrong one, and a clean close would pass a
    // body delimited by the close (HTTP/1.0, or the uwsgi port behind
    // nginx) for a whole one.
    flush();
    held_.clear();
    state_ = ResponseState::kAborted;
    t_.reset_on_close();
    return;
  }
  // A body the parser refused (too large) explains the failure better.
  if (int refused = proto_.refused_status()) status = refused;
  status_ = status;
  error_answer(status, req.is_head, &out_, proto_.origin_fields());
  head_bytes_ = out_.find("\r\n\r\n") + 4;
  head_fields_count_ = count_head_fields(std::string_view(out_).substr(0, head_bytes_));
  body_sent_ = out_.size() - head_bytes_;
  state_ = ResponseState::kHeadSent;
  iovec iov{out_.data(), out_.size()};
  if (send(&iov, 1)) state_ = ResponseState::kDone;
}

}  // namespace spindle::core
