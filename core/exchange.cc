// The core side of a connection: the Exchange an app sees, run on an async
// core. Every call that would block parks the core. See connection.hh.
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/connection.hh"
#include "core/log.hh"
#include "core/park.hh"
#include "core/scheduler.hh"
#include "core/stats.hh"
#include "core/text.hh"
#include "core/worker.hh"

namespace spindle::core {

namespace {

double mono_now() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

bool is_token_char(unsigned char c) {
  if (c <= 32 || c >= 127) return false;
  return !strchr("()<>@,;:\\\"/[]?={}", c);
}

constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace

void Connection::build_error(int status) {
  char body[64];
  int blen = snprintf(body, sizeof body, "%d %s\n", status, reason_phrase(status));
  char head[256];
  int hlen = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                      "Connection: close\r\n\r\n",
                      status, reason_phrase(status), blen);
  out_.assign(head, static_cast<std::size_t>(hlen));
  if (!is_head_) out_.append(body, static_cast<std::size_t>(blen));
}

// --- serving --------------------------------------------------------------

void Connection::serve(Core& core) {
  core_ = &core;
  state_ = State::kActive;
  for (;;) {
    begin_request();
    if (App* app = worker_.app()) app->handle(*this);
    if (!started_ && !finished_) fail(500);
    finish();
    end_request();
    is_head_ = false;  // a rejection of what follows must not look like a HEAD answer
    if (!keep_alive_ || aborted_ || worker_.draining() || !drain_body()) {
      close_now();
      return;
    }
    // The next request: pipelined bytes may already hold it.
    parser_.begin();
    body_.clear();
    body_off_ = 0;
    since_request_ = in_end_ - in_start_;
    if (in_start_ < in_end_) {
      long n = parser_.feed(in_.data() + in_start_, in_end_ - in_start_, &body_);
      if (n < 0) {
        reject(parser_.error_status(), parser_.error_reason());
        return;
      }
      in_start_ += static_cast<std::size_t>(n);
      if (parser_.head_complete()) {
        // Let the other cores and the loop run between pipelined requests.
        yield_now();
        continue;
      }
    }
    // Back to the loop side; a level-triggered watcher reports bytes that
    // came in while we were busy.
    in_.release_if_empty(in_start_, in_end_);
    core_ = nullptr;
    wait_for_request();
    return;
  }
}

void Connection::begin_request() {
  started_ = head_sent_ = finished_ = aborted_ = chunked_ = false;
  app_length_ = hint_ = no_body_ = continue_sent_ = false;
  app_length_value_ = hint_value_ = body_sent_ = 0;
  status_ = 0;
  error_.clear();
  started_at_ = mono_now();
  if (listener_.proto == Proto::kHttp) {
    const RequestHead& h = parser_.head();
    build_http_vars(h, listener_, peer_addr_, peer_port_, &vars_);
    vars_span_ = vars_.finish();
    is_head_ = h.method == "HEAD";
    keep_alive_ = h.keep_alive && !h.upgrade;
    scheme_ = "http";
    request_line_ = h.method;
    request_line_ += ' ';
    request_line_ += h.url;
    request_line_ += h.version_minor == 0 ? " HTTP/1.0" : " HTTP/1.1";
  } else {
    vars_span_ = vars_.finish();
    is_head_ = vars_.find("REQUEST_METHOD") == "HEAD";
    keep_alive_ = false;
    std::string_view https = vars_.find("HTTPS");
    std::string_view scheme = vars_.find("UWSGI_SCHEME");
    scheme_ = !scheme.empty() ? scheme
              : (https == "on" || https == "1") ? std::string_view("https")
                                                : std::string_view("http");
    request_line_.assign(vars_.find("REQUEST_METHOD"));
    request_line_ += ' ';
    request_line_ += vars_.find("REQUEST_URI");
    request_line_ += ' ';
    request_line_ += vars_.find("SERVER_PROTOCOL");
  }
  stats::request_begin(core_->id, request_line_);
}

void Connection::end_request() {
  double took = mono_now() - started_at_;
  stats::request_end(core_->id, status_, body_sent_, took);
  if (!worker_.cfg().disable_logging) {
    log_access("%s \"%s\" %d %llu %.3fms", peer_addr_.empty() ? "-" : peer_addr_.c_str(),
               request_line_.c_str(), status_, static_cast<unsigned long long>(body_sent_),
               took * 1000.0);
  }
  worker_.request_done();
}

// Before the next request on this connection, the rest of this one's body
// must be consumed. A client still waiting for 100 Continue has not sent it:
// closing is the only safe answer then.
bool Connection::drain_body() {
  if (listener_.proto != Proto::kHttp) return false;
  if (parser_.message_complete()) return true;
  if (parser_.head().expect_continue && !continue_sent_) return false;
  char scratch[16384];
  std::size_t drained = 0;
  while (drained < (1u << 20)) {
    ssize_t n = read(scratch, sizeof scratch);
    if (n < 0) return false;
    if (n == 0) return true;
    drained += static_cast<std::size_t>(n);
  }
  return false;
}

// --- request body ---------------------------------------------------------

// Reads what the socket has into buf (at most n bytes), parking this core
// while it has nothing. >0: bytes read; 0: the client closed; -1: error,
// timeout or cancel (error_ says which).
ssize_t Connection::read_some(char* buf, std::size_t n) {
  for (;;) {
    ssize_t r = ::read(fd_, buf, n);
    if (r > 0) return r;
    if (r == 0) {
      error_ = "client closed the connection";
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      error_ = std::string("read: ") + strerror(errno);
      stats::io_error(core_->id, false);
      return -1;
    }
    if (!wait_io(kRead)) {
      stats::io_error(core_->id, false);
      return -1;
    }
  }
}

bool Connection::wait_io(int interest) {
  Wake why = park(io_, fd_, interest, worker_.cfg().socket_timeout);
  if (why == Wake::kReady) return true;
  error_ = why == Wake::kCancelled ? "cancelled"
           : interest == kRead     ? "timeout reading the request body"
                                   : "timeout writing the response";
  return false;
}

bool Connection::abort_with(std::string why) {
  if (!aborted_ && core_) stats::io_error(core_->id, true);
  error_ = std::move(why);
  keep_alive_ = false;
  aborted_ = true;
  return false;
}

ssize_t Connection::read(char* buf, std::size_t n) {
  if (n == 0) return 0;
  if (listener_.proto == Proto::kUwsgi) {
    if (uwsgi_body_left_ == 0) return 0;
    std::size_t want = n < uwsgi_body_left_ ? n : static_cast<std::size_t>(uwsgi_body_left_);
    if (in_start_ < in_end_) {
      std::size_t k = std::min(want, in_end_ - in_start_);
      memcpy(buf, in_.data() + in_start_, k);
      in_start_ += k;
      uwsgi_body_left_ -= k;
      return static_cast<ssize_t>(k);
    }
    // Large bodies go straight into the caller's buffer.
    ssize_t r = read_some(buf, want);
    if (r <= 0) return -1;
    uwsgi_body_left_ -= static_cast<std::uint64_t>(r);
    return r;
  }
  for (;;) {
    if (body_off_ < body_.size()) {
      std::size_t k = std::min(n, body_.size() - body_off_);
      memcpy(buf, body_.data() + body_off_, k);
      body_off_ += k;
      if (body_off_ == body_.size()) {
        body_.clear();
        body_off_ = 0;
      }
      return static_cast<ssize_t>(k);
    }
    if (parser_.message_complete()) return 0;
    if (parser_.error_status()) return -1;
    if (parser_.head().expect_continue && !continue_sent_ && !head_sent_) {
      continue_sent_ = true;
      iovec iov{const_cast<char*>(kContinue), sizeof kContinue - 1};
      if (!send_iov(&iov, 1)) return -1;
    }
    long used;
    if (in_start_ == in_end_) {
      ssize_t got = read_some(scratch(), kScratch);
      if (got <= 0) {
        keep_alive_ = false;
        return -1;
      }
      used = feed_scratch(scratch(), static_cast<std::size_t>(got));
    } else {
      used = parser_.feed(in_.data() + in_start_, in_end_ - in_start_, &body_);
      if (used > 0) in_start_ += static_cast<std::size_t>(used);
    }
    if (used < 0) {
      error_ = parser_.error_reason();
      keep_alive_ = false;
      log(Level::kWarn, "%s:%s %d %s", peer_addr_.c_str(), peer_port_.c_str(),
          parser_.error_status(), error_.c_str());
      return -1;
    }
  }
}

// --- response -------------------------------------------------------------

bool Connection::start_response(std::string_view status, std::span<const Header> headers,
                                std::string* why) {
  if (head_sent_) {
    *why = "start_response called after the response head was sent";
    return false;
  }
  if (status.size() < 3 || !isdigit(static_cast<unsigned char>(status[0])) ||
      !isdigit(static_cast<unsigned char>(status[1])) ||
      !isdigit(static_cast<unsigned char>(status[2])) || (status.size() > 3 && status[3] != ' ')) {
    *why = "malformed status '" + std::string(status.substr(0, 64)) + "'";
    return false;
  }
  for (char c : status) {
    if (c == '\r' || c == '\n' || c == '\0') {
      *why = "control character in status";
      return false;
    }
  }
  int code = (status[0] - '0') * 100 + (status[1] - '0') * 10 + (status[2] - '0');
  if (code < 200) {
    // A 1xx is interim: sent as the final answer, the client would read the
    // next response as this one's.
    *why = "1xx is not a final status";
    return false;
  }
  head_fields_.clear();
  app_length_ = false;
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
    } else if (iequals(h.name, "transfer-encoding")) {
      *why = "hop-by-hop header Transfer-Encoding set by the application";
      return false;
    }
    head_fields_.append(h.name);
    head_fields_.append(": ");
    head_fields_.append(h.value);
    head_fields_.append("\r\n");
  }
  if (close) keep_alive_ = false;
  status_line_.assign(status);
  if (status_line_.size() == 3) status_line_ += ' ';  // the space is required, the reason is not
  status_ = code;
  no_body_ = is_head_ || code == 204 || code == 304;
  started_ = true;
  return true;
}

void Connection::set_length_hint(std::uint64_t n) {
  if (head_sent_) return;
  hint_ = true;
  hint_value_ = n;
}

bool Connection::send_head(bool final) {
  const bool http = listener_.proto == Proto::kHttp;
  const bool http10 = http && parser_.head().version_minor == 0;
  const bool bodiless_status = status_ == 204 || status_ == 304;
  out_.assign("HTTP/1.1 ");
  out_.append(status_line_);
  out_.append("\r\n");
  out_.append(head_fields_);
  char num[48];
  if (app_length_) {
    // passed through as the app gave it
  } else if (hint_ || (final && !is_head_)) {
    if (!bodiless_status) {
      int k = snprintf(num, sizeof num, "Content-Length: %llu\r\n",
                       static_cast<unsigned long long>(hint_ ? hint_value_ : body_sent_));
      out_.append(num, static_cast<std::size_t>(k));
    }
  } else if (no_body_) {
    // HEAD without a length: nothing to delimit
  } else if (http && !http10) {
    chunked_ = true;
    out_.append("Transfer-Encoding: chunked\r\n");
  } else {
    keep_alive_ = false;  // the close delimits the body
  }
  if (worker_.draining()) keep_alive_ = false;
  if (!keep_alive_) {
    out_.append("Connection: close\r\n");
  } else if (http10) {
    out_.append("Connection: keep-alive\r\n");
  }
  out_.append("\r\n");
  head_sent_ = true;
  return true;
}

bool Connection::send_iov(iovec* iov, int cnt) {
  msghdr msg{};
  for (;;) {
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(cnt);
    ssize_t r = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (r >= 0) {
      std::size_t left = static_cast<std::size_t>(r);
      while (cnt > 0 && left >= iov->iov_len) {
        left -= iov->iov_len;
        ++iov;
        --cnt;
      }
      if (cnt == 0) return true;
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return abort_with(std::string("write: ") + strerror(errno));
    // A slow reader parks only this core.
    if (!wait_io(kWrite)) return abort_with(error_);
  }
}

bool Connection::write(std::string_view data) {
  if (aborted_ || finished_) return false;
  if (!started_) {
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
      keep_alive_ = false;
    }
  }
  iovec iov[4];
  int cnt = 0;
  if (!head_sent_) {
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
  }
  bool ok = cnt == 0 || send_iov(iov, cnt);
  if (overrun) return overran();
  return ok;
}

bool Connection::declared() const { return app_length_ || hint_; }

std::uint64_t Connection::room_left() const {
  std::uint64_t want = app_length_ ? app_length_value_ : hint_value_;
  return want > body_sent_ ? want - body_sent_ : 0;
}

// The app produced more body than its Content-Length: the extra bytes
// would be read as the next response on this connection.
bool Connection::overran() {
  log(Level::kWarn, "\"%s\": the body is longer than its Content-Length; truncated, closing",
      request_line_.c_str());
  return abort_with("response body longer than its Content-Length");
}

bool Connection::sendfile(int fd, off_t offset, std::uint64_t count) {
  if (aborted_ || finished_) return false;
  if (!started_) {
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
  bool overrun = false;
  if (!no_body_ && declared() && count > room_left()) {
    count = room_left();
    overrun = true;
    keep_alive_ = false;
  }
  if (!head_sent_) {
    if (!app_length_ && !hint_) set_length_hint(count);
    send_head(false);
    iovec iov{out_.data(), out_.size()};
    if (!send_iov(&iov, 1)) return false;
  }
  if (no_body_ || count == 0) return overrun ? overran() : true;
  char chunk[24];
  if (chunked_) {
    int k = snprintf(chunk, sizeof chunk, "%llx\r\n", static_cast<unsigned long long>(count));
    iovec iov{chunk, static_cast<std::size_t>(k)};
    if (!send_iov(&iov, 1)) return false;
  }
  while (count > 0) {
    std::size_t step = count > (1u << 30) ? (1u << 30) : static_cast<std::size_t>(count);
    ssize_t r = ::sendfile(fd_, fd, &offset, step);
    if (r > 0) {
      count -= static_cast<std::uint64_t>(r);
      body_sent_ += static_cast<std::uint64_t>(r);
      continue;
    }
    if (r == 0) return abort_with("sendfile: file shorter than announced");
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return abort_with(std::string("sendfile: ") + strerror(errno));
    if (!wait_io(kWrite)) return abort_with(error_);
  }
  if (chunked_) {
    iovec iov{const_cast<char*>("\r\n"), 2};
    if (!send_iov(&iov, 1)) return false;
  }
  return overrun ? overran() : true;
}

bool Connection::finish() {
  if (finished_) return !aborted_;
  finished_ = true;
  if (!no_body_ && declared() && room_left() > 0) {
    // The client would wait for bytes that never come, or read the next
    // response as the rest of this one: only a close keeps it in step.
    log(Level::kWarn, "\"%s\": the body is %llu bytes short of its Content-Length; closing",
        request_line_.c_str(), static_cast<unsigned long long>(room_left()));
    keep_alive_ = false;
  }
  if (!head_sent_) {
    send_head(true);
    iovec iov{out_.data(), out_.size()};
    return send_iov(&iov, 1);
  }
  if (chunked_) {
    iovec iov{const_cast<char*>("0\r\n\r\n"), 5};
    return send_iov(&iov, 1);
  }
  return true;
}

void Connection::fail(int status) {
  if (finished_) return;
  keep_alive_ = false;
  finished_ = true;
  if (head_sent_) {
    aborted_ = true;  // a truncated response is better than a wrong one
    return;
  }
  // A body the parser refused (too large) explains the failure better.
  if (parser_.error_status() && listener_.proto == Proto::kHttp) status = parser_.error_status();
  status_ = status;
  build_error(status);
  head_sent_ = true;
  iovec iov{out_.data(), out_.size()};
  send_iov(&iov, 1);
}

}  // namespace spindle::core
