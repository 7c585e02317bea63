#include "core/http_parser.hh"

#include <strings.h>

#include <cstring>

#include "core/http_target.hh"
#include "core/text.hh"

namespace spindle::core {

namespace {

HttpParser* self(llhttp_t* p) { return static_cast<HttpParser*>(p->data); }

std::string trim_lower(const std::string& s) {
  std::size_t b = s.find_first_not_of(" \t");
  std::size_t e = s.find_last_not_of(" \t");
  std::string out = b == std::string::npos ? "" : s.substr(b, e - b + 1);
  for (char& c : out) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return out;
}

// llhttp knows a fixed list of methods; the method is ours (the scanner
// takes it), so llhttp is given one with no special meaning instead.
constexpr char kStandIn[] = "GET";

}  // namespace

// One table for every parser: llhttp keeps a pointer to it, and its entries
// are the same static callbacks for all (a copy per connection cost 184 bytes).
const llhttp_settings_t* HttpParser::shared_settings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_url = on_url;
    s.on_header_field = on_header_field;
    s.on_header_value = on_header_value;
    s.on_headers_complete = on_headers_complete;
    return s;
  }();
  return &settings;
}

HttpParser::HttpParser() {
  llhttp_init(&parser_, HTTP_REQUEST, shared_settings());
  parser_.data = this;
  begin();
}

void HttpParser::begin() {
  // llhttp only ever sees one head: it starts afresh for each.
  llhttp_reset(&parser_);
  scan_ = Scan::kLead;
  head_raw_ = 0;
  head_.method.clear();
  head_.url.clear();
  head_.header_count = 0;
  head_.keep_alive = true;
  head_.chunked = false;
  head_.has_content_length = false;
  head_.content_length = 0;
  head_.expect_continue = false;
  head_.upgrade = false;
  head_.authority.clear();
  head_.path_at = 0;
  body_left_ = 0;
  body_received_ = 0;
  in_value_ = false;
  head_complete_ = false;
  message_complete_ = false;
  error_status_ = 0;
  error_reason_.clear();
}

int HttpParser::fail(int status, const char* reason) {
  if (error_status_ == 0) {
    error_status_ = status;
    error_reason_ = reason;
  }
  return HPE_USER;
}

long HttpParser::feed(const char* data, std::size_t n, std::string* body) {
  if (error_status_) return -1;
  if (message_complete_) return 0;
  std::size_t used = 0;
  if (!head_complete_) {
    long r = feed_head(data, n);
    if (r < 0) return -1;
    used = static_cast<std::size_t>(r);
    if (!head_complete_) return r;
    if (head_.chunked) {
      // Made by the first chunked body: most connections never see one.
      if (!chunked_) chunked_ = std::make_unique<ChunkedDecoder>();
      chunked_->reset();
      chunked_->set_limits({limits_.max_body, limits_.max_head, limits_.max_head});
    } else if (head_.has_content_length && head_.content_length > 0) {
      body_left_ = head_.content_length;
    } else {
      message_complete_ = true;
    }
  }
  if (!message_complete_ && used < n) {
    long r = feed_body(data + used, n - used, body);
    if (r < 0) return -1;
    used += static_cast<std::size_t>(r);
  }
  return static_cast<long>(used);
}

// Scans head bytes (see the header); what lies past the method goes to
// llhttp, up to the end of the head and never beyond.
//
// The outcome must not depend on how the bytes were cut: when the scanner
// refuses a byte (or the head outgrows its limit there), llhttp first gets
// the bytes before it, so that whichever problem comes first in the stream
// is the one reported, whole or in pieces.
long HttpParser::feed_head(const char* data, std::size_t n) {
  // Every byte counts toward the limit, whitespace llhttp would skip and
  // empty lines included, and before llhttp sees it: a head too long never
  // waits for its end.
  const std::size_t room = limits_.max_head > head_raw_ ? limits_.max_head - head_raw_ : 0;
  const std::size_t stop = n < room ? n : room;
  // Where this call's bytes for llhttp begin (npos: none yet).
  std::size_t from = scan_ > Scan::kMethod ? 0 : std::string::npos;
  int refuse = 0;  // a status, when the scanner refuses byte i
  const char* why = "";
  std::size_t i = 0;
  for (; i < stop && scan_ != Scan::kDone && !refuse; ++i) {
    auto c = static_cast<unsigned char>(data[i]);
    switch (scan_) {
      case Scan::kLead:
        if (c == '\r') {
          scan_ = Scan::kLeadLf;
        } else if (is_tchar(c)) {
          head_.method.push_back(static_cast<char>(c));
          scan_ = Scan::kMethod;
        } else if (c != '\n') {
          refuse = 400, why = "invalid request line";
        }
        break;
      case Scan::kLeadLf:
        if (c != '\n')
          refuse = 400, why = "invalid request line";
        else
          scan_ = Scan::kLead;
        break;
      case Scan::kMethod: {
        std::size_t end = i;
        while (end < stop && is_tchar(static_cast<unsigned char>(data[end]))) ++end;
        head_.method.append(data + i, end - i);
        if (end == stop) {
          i = stop - 1;
          break;
        }
        i = end;
        if (data[i] != ' ') {
          refuse = 400, why = "invalid method";
        } else if (head_.method == "CONNECT") {
          // A tunnel is not something a WSGI app can serve.
          refuse = 405, why = "CONNECT not supported";
        } else if (llhttp_execute(&parser_, kStandIn, sizeof kStandIn - 1) != HPE_OK) {
          refuse = 400, why = "invalid request line";
        } else {
          from = i;
          scan_ = Scan::kTargetStart;
        }
        break;
      }
      case Scan::kTargetStart:
      case Scan::kTarget:
        if (scan_ == Scan::kTarget) {
          while (i + 1 < stop && data[i] != ' ' && data[i] != '#') ++i;
          c = static_cast<unsigned char>(data[i]);
        }
        if (c == ' ') {
          if (scan_ == Scan::kTargetStart)
            refuse = 400, why = "more than one space in the request line";
          else
            scan_ = Scan::kVersionStart;
        } else if (c == '#') {
          refuse = 400, why = "fragment in the request target";
        } else {
          scan_ = Scan::kTarget;
        }
        break;
      case Scan::kVersionStart:
        if (c == ' ')
          refuse = 400, why = "more than one space in the request line";
        else
          scan_ = Scan::kVersion;
        break;
      case Scan::kVersion:
      case Scan::kField: {
        const void* lf = memchr(data + i, '\n', stop - i);
        if (lf == nullptr) {
          i = stop - 1;
        } else {
          i = static_cast<std::size_t>(static_cast<const char*>(lf) - data);
          scan_ = Scan::kLineStart;
        }
        break;
      }
      case Scan::kLineStart:
        if (c == ' ' || c == '\t') {
          // obs-fold: folding it into the previous field would make
          // "Transfer-Encoding:\r\n chunked" mean what a proxy did not see.
          refuse = 400, why = "folded header line (obs-fold)";
        } else {
          scan_ = c == '\r' ? Scan::kEndLf : Scan::kField;
        }
        break;
      case Scan::kEndLf:
        if (c != '\n')
          refuse = 400, why = "invalid end of the request head";
        else
          scan_ = Scan::kDone;
        break;
      case Scan::kDone: break;
    }
  }
  if (refuse) --i;  // the refused byte was not taken
  if (!refuse && scan_ != Scan::kDone && i == room && n > room)
    refuse = 431, why = "request header fields too large";
  head_raw_ += i;
  if (from != std::string::npos && (i > from || (!refuse && scan_ == Scan::kDone))) {
    if (run_llhttp(data + from, i - from, !refuse && scan_ == Scan::kDone) < 0) return -1;
  }
  if (refuse) {
    fail(refuse, why);
    return -1;
  }
  return static_cast<long>(i);
}

// Feeds llhttp head bytes. When they end the head, llhttp must end it at
// the same byte (it pauses in on_headers_complete).
long HttpParser::run_llhttp(const char* data, std::size_t n, bool head_ends) {
  llhttp_errno_t err = llhttp_execute(&parser_, data, n);
  if (err == HPE_PAUSED && head_complete_ && head_ends &&
      llhttp_get_error_pos(&parser_) == data + n)
    return 0;
  if (err == HPE_OK && !head_ends) return 0;
  if (error_status_ == 0) {
    if (err == HPE_OK || err == HPE_PAUSED) {
      fail(400, "malformed request head");
    } else {
      const char* reason = llhttp_get_error_reason(&parser_);
      fail(err == HPE_INVALID_TRANSFER_ENCODING ? 501 : 400,
           reason ? reason : llhttp_errno_name(err));
    }
  }
  head_complete_ = false;
  return -1;
}

long HttpParser::feed_body(const char* data, std::size_t n, std::string* body) {
  if (head_.chunked) {
    long r = chunked_->feed(data, n, body);
    body_received_ = chunked_->payload();
    if (r < 0) {
      fail(chunked_->status(), chunked_->reason());
      return -1;
    }
    message_complete_ = chunked_->done();
    return r;
  }
  std::size_t k = n < body_left_ ? n : static_cast<std::size_t>(body_left_);
  body->append(data, k);
  body_received_ += k;
  body_left_ -= k;
  message_complete_ = body_left_ == 0;
  return static_cast<long>(k);
}

int HttpParser::on_url(llhttp_t* p, const char* at, std::size_t n) {
  self(p)->head_.url.append(at, n);
  return 0;
}

int HttpParser::on_header_field(llhttp_t* p, const char* at, std::size_t n) {
  HttpParser* s = self(p);
  RequestHead& h = s->head_;
  const bool fresh = s->in_value_ || h.header_count == 0;
  if (fresh && h.header_count == kMaxHeaders) return s->fail(431, "too many header fields");
  if (fresh) {
    // A new field: reuse the slot's strings to keep their capacity.
    if (h.header_count == h.headers.size()) h.headers.emplace_back();
    HeaderField& f = h.headers[h.header_count++];
    f.name.assign(at, n);
    f.value.clear();
    s->in_value_ = false;
  } else {
    h.headers[h.header_count - 1].name.append(at, n);
  }
  return 0;
}

int HttpParser::on_header_value(llhttp_t* p, const char* at, std::size_t n) {
  HttpParser* s = self(p);
  s->in_value_ = true;
  s->head_.headers[s->head_.header_count - 1].value.append(at, n);
  return 0;
}

int HttpParser::on_headers_complete(llhttp_t* p) {
  HttpParser* s = self(p);
  RequestHead& h = s->head_;
  h.version_major = p->http_major;
  h.version_minor = p->http_minor;
  h.keep_alive = llhttp_should_keep_alive(p);
  h.upgrade = p->upgrade;
  if (int r = s->check_head()) return r;
  s->head_complete_ = true;
  // Stop at the end of the head: the body is ours to read.
  return HPE_PAUSED;
}

int HttpParser::check_head() {
  RequestHead& h = head_;
  if (h.version_major != 1) return fail(505, "HTTP version not supported");
  const HeaderField* host = nullptr;
  for (std::size_t i = 0; i < h.header_count; ++i) {
    HeaderField& f = h.headers[i];
    if (f.name.empty()) return fail(400, "empty header name");
    // Trailing whitespace is not part of a field value (RFC 9110 5.5).
    while (!f.value.empty() && (f.value.back() == ' ' || f.value.back() == '\t'))
      f.value.pop_back();
    if (iequals(f.name, "host")) {
      // RFC 9112 3.2: one Host, and a valid one, or 400.
      if (host) return fail(400, "more than one Host");
      if (!valid_host(f.value)) return fail(400, "invalid Host");
      host = &f;
    } else if (iequals(f.name, "transfer-encoding")) {
      // llhttp accepts codings ending in chunked; we only decode chunked.
      if (trim_lower(f.value) != "chunked") return fail(501, "unsupported transfer coding");
      h.chunked = true;
    } else if (iequals(f.name, "content-length")) {
      h.has_content_length = true;
      h.content_length = parser_.content_length;
    } else if (iequals(f.name, "expect")) {
      if (trim_lower(f.value) != "100-continue") return fail(417, "unsupported expectation");
      h.expect_continue = h.version_minor >= 1;
    }
  }
  if (!host && h.version_minor >= 1) return fail(400, "HTTP/1.1 request without Host");
  Target target;
  const char* why = "";
  if (!parse_target(h.url, &target, &why)) return fail(400, why);
  if (target.form == Target::Form::kAsterisk && h.method != "OPTIONS")
    return fail(400, "'*' target with a method other than OPTIONS");
  h.authority.assign(target.authority);
  h.path_at = target.path_at;
  if (h.has_content_length && limits_.max_body && h.content_length > limits_.max_body)
    return fail(413, "request body too large");
  return 0;
}

}  // namespace spindle::core
