// The uwsgi protocol: read a whole vars block on the loop side, fill in what
// PEP 3333 needs and nginx may leave out, then serve one request and close.
#include "core/uwsgi_protocol.hh"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/scheduler.hh"
#include "core/text.hh"
#include "core/transport.hh"
#include "core/uwsgi_codec.hh"
#include "core/worker.hh"

namespace spindle::core {

void UwsgiProtocol::on_readable() {
  for (;;) {
    if (!t_.in.make_room(t_.in_start, t_.in_end)) {
      fail(413, "request head too large");
      return;
    }
    ssize_t r = ::read(t_.fd(), t_.in.data() + t_.in_end, t_.in.size() - t_.in_end);
    if (r > 0) {
      t_.since_request += static_cast<std::size_t>(r);
      t_.in_end += static_cast<std::size_t>(r);
      Parse got = parse();
      if (got == Parse::kFailed) return;
      if (got == Parse::kNeedMore) continue;
      if (t_.worker().static_files().enabled() && body_left_ == 0) {
        std::span<const Var> vars = vars_.finish();
        std::string line(vars_.find("REQUEST_METHOD"));
        line += ' ';
        line += vars_.find("REQUEST_URI");
        line += ' ';
        line += vars_.find("SERVER_PROTOCOL");
        if (try_static(vars, false, false, line)) return;
      }
      t_.set_busy();
      t_.worker().scheduler().submit(&ex_);
      return;
    }
    if (r == 0) {
      t_.close();
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) t_.close();
    return;
  }
}

// kReady when a whole vars block is in; bad input is answered with fail()
// (kFailed).
UwsgiProtocol::Parse UwsgiProtocol::parse() {
  const Config& cfg = t_.worker().cfg();
  uwsgi::PacketHeader h;
  const char* p = t_.in.data() + t_.in_start;
  std::size_t avail = t_.in_end - t_.in_start;
  if (uwsgi::parse_header(p, avail, &h) != uwsgi::Status::kOk) return Parse::kNeedMore;
  if (h.size > cfg.buffer_size) {
    fail(413, "uwsgi vars block larger than --buffer-size");
    return Parse::kFailed;
  }
  if (avail < uwsgi::kHeaderSize + h.size) return Parse::kNeedMore;
  static thread_local std::vector<Var> raw;
  raw.clear();
  if (h.modifier1 != 0 ||
      uwsgi::parse_vars(p + uwsgi::kHeaderSize, h.size, &raw) != uwsgi::Status::kOk) {
    fail(400, h.modifier1 != 0 ? "unsupported uwsgi modifier" : "malformed uwsgi packet");
    return Parse::kFailed;
  }
  std::string why;
  if (!build_uwsgi_vars(raw, t_.listener(), &vars_, &body_left_, &why)) {
    fail(400, why);
    return Parse::kFailed;
  }
  if (cfg.limit_post && body_left_ > cfg.limit_post) {
    fail(413, "request body too large");
    return Parse::kFailed;
  }
  t_.in_start += uwsgi::kHeaderSize + h.size;
  modifier2_ = h.modifier2;
  return Parse::kReady;
}

void UwsgiProtocol::begin(Exchange& ex) {
  const double body_timeout = t_.worker().cfg().body_timeout;
  t_.set_body_budget(body_timeout > 0 && body_left_ > 0 ? body_timeout : -1);
  ex.req.vars = vars_.finish();
  ex.req.is_head = vars_.find("REQUEST_METHOD") == "HEAD";
  ex.req.keep_alive = false;
  ex.req.modifier2 = modifier2_;
  std::string_view https = vars_.find("HTTPS");
  std::string_view scheme = vars_.find("UWSGI_SCHEME");
  ex.req.scheme = !scheme.empty()                   ? scheme
                  : (https == "on" || https == "1") ? std::string_view("https")
                                                    : std::string_view("http");
  {
    std::string& line = ex.req.line;
    line.assign(vars_.find("REQUEST_METHOD"));
    line += ' ';
    line += vars_.find("REQUEST_URI");
    line += ' ';
    line += vars_.find("SERVER_PROTOCOL");
  }
}

ssize_t UwsgiProtocol::read_body(Exchange& ex, char* buf, std::size_t n) {
  if (body_left_ == 0) return 0;
  std::size_t want = n < body_left_ ? n : static_cast<std::size_t>(body_left_);
  if (t_.in_start < t_.in_end) {
    std::size_t k = std::min(want, t_.in_end - t_.in_start);
    memcpy(buf, t_.in.data() + t_.in_start, k);
    t_.in_start += k;
    body_left_ -= k;
    return static_cast<ssize_t>(k);
  }
  // Large bodies go straight into the caller's buffer.
  std::string why;
  ssize_t r = t_.read_some(buf, want, &why);
  if (r <= 0) {
    ex.read_failed(std::move(why));
    return -1;
  }
  body_left_ -= static_cast<std::uint64_t>(r);
  return r;
}

bool UwsgiProtocol::next(Exchange&, bool) {
  // nginx sends the whole body even when the app read none of it.
  t_.close_after_answer(body_left_ > 0);
  return false;
}

// One request per connection: a static answer ends it too.
void UwsgiProtocol::static_done(bool) { t_.close(); }

}  // namespace spindle::core
