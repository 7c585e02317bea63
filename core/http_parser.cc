#include "core/http_parser.hh"

#include <strings.h>

#include <cstring>

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

}  // namespace

HttpParser::HttpParser() {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = on_message_begin;
  settings_.on_url = on_url;
  settings_.on_header_field = on_header_field;
  settings_.on_header_value = on_header_value;
  settings_.on_headers_complete = on_headers_complete;
  settings_.on_body = on_body;
  settings_.on_message_complete = on_message_complete;
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
  begin();
}

void HttpParser::begin() {
  if (llhttp_get_errno(&parser_) == HPE_PAUSED) llhttp_resume(&parser_);
  // The previous message asked for an upgrade and was answered as HTTP.
  if (llhttp_get_errno(&parser_) == HPE_PAUSED_UPGRADE) llhttp_resume_after_upgrade(&parser_);
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
  head_bytes_ = 0;
  body_received_ = 0;
  in_value_ = false;
  head_complete_ = false;
  message_complete_ = false;
  error_status_ = 0;
  error_reason_.clear();
}

int HttpParser::fail(int status, const char* reason) {
  error_status_ = status;
  error_reason_ = reason;
  return HPE_USER;
}

bool HttpParser::count_head(std::size_t n) {
  head_bytes_ += n;
  return head_bytes_ <= limits_.max_head;
}

long HttpParser::feed(const char* data, std::size_t n, std::string* body) {
  if (message_complete_) return 0;
  body_ = body;
  llhttp_errno_t err = llhttp_execute(&parser_, data, n);
  if (err == HPE_PAUSED_UPGRADE && !head_complete_ && llhttp_get_error_pos(&parser_) == data) {
    // Still paused from an upgrade we answered as plain HTTP.
    llhttp_resume_after_upgrade(&parser_);
    err = llhttp_execute(&parser_, data, n);
  }
  if (err == HPE_OK) {
    // Bytes still arriving: a head that is already too long must not wait
    // for the rest (the request line alone may be huge). With the head
    // incomplete every byte fed so far is head, including the whitespace
    // llhttp skips without a callback.
    if (!head_complete_) head_raw_ += n;
    if (!head_complete_ && (head_bytes_ > limits_.max_head || head_raw_ > limits_.max_head)) {
      fail(431, "request header fields too large");
      return -1;
    }
    return static_cast<long>(n);
  }
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    const char* pos = llhttp_get_error_pos(&parser_);
    return pos ? pos - data : static_cast<long>(n);
  }
  if (error_status_ == 0) {
    const char* reason = llhttp_get_error_reason(&parser_);
    error_status_ = err == HPE_INVALID_TRANSFER_ENCODING ? 501 : 400;
    error_reason_ = reason ? reason : llhttp_errno_name(err);
  }
  return -1;
}

int HttpParser::on_message_begin(llhttp_t*) { return 0; }

int HttpParser::on_url(llhttp_t* p, const char* at, std::size_t n) {
  HttpParser* s = self(p);
  if (!s->count_head(n)) return s->fail(431, "request line too long");
  s->head_.url.append(at, n);
  return 0;
}

int HttpParser::on_header_field(llhttp_t* p, const char* at, std::size_t n) {
  HttpParser* s = self(p);
  RequestHead& h = s->head_;
  const bool fresh = s->in_value_ || h.header_count == 0;
  // ": " and CRLF count once per field, however the name arrives.
  if (!s->count_head(n + (fresh ? 4 : 0))) return s->fail(431, "request header fields too large");
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
  if (!s->count_head(n)) return s->fail(431, "request header fields too large");
  s->in_value_ = true;
  s->head_.headers[s->head_.header_count - 1].value.append(at, n);
  return 0;
}

int HttpParser::on_headers_complete(llhttp_t* p) {
  HttpParser* s = self(p);
  RequestHead& h = s->head_;
  h.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
  h.version_major = p->http_major;
  h.version_minor = p->http_minor;
  h.keep_alive = llhttp_should_keep_alive(p);
  h.upgrade = p->upgrade;
  for (std::size_t i = 0; i < h.header_count; ++i) {
    HeaderField& f = h.headers[i];
    if (f.name.empty()) return s->fail(400, "empty header name");
    // Trailing whitespace is not part of a field value (RFC 9110 5.5).
    while (!f.value.empty() && (f.value.back() == ' ' || f.value.back() == '\t')) f.value.pop_back();
    if (iequals(f.name, "transfer-encoding")) {
      // llhttp accepts codings ending in chunked; we only decode chunked.
      if (trim_lower(f.value) != "chunked") return s->fail(501, "unsupported transfer coding");
      h.chunked = true;
    } else if (iequals(f.name, "content-length")) {
      h.has_content_length = true;
      h.content_length = p->content_length;
    } else if (iequals(f.name, "expect")) {
      if (trim_lower(f.value) != "100-continue") return s->fail(417, "unsupported expectation");
      h.expect_continue = h.version_minor >= 1;
    }
  }
  if (p->method == HTTP_CONNECT) return s->fail(405, "CONNECT not supported");
  if (h.version_major != 1) return s->fail(505, "HTTP version not supported");
  if (h.has_content_length && s->limits_.max_body && h.content_length > s->limits_.max_body)
    return s->fail(413, "request body too large");
  s->head_complete_ = true;
  return 0;
}

int HttpParser::on_body(llhttp_t* p, const char* at, std::size_t n) {
  HttpParser* s = self(p);
  s->body_received_ += n;
  if (s->limits_.max_body && s->body_received_ > s->limits_.max_body)
    return s->fail(413, "request body too large");
  s->body_->append(at, n);
  return 0;
}

int HttpParser::on_message_complete(llhttp_t* p) {
  HttpParser* s = self(p);
  s->message_complete_ = true;
  return HPE_PAUSED;
}

}  // namespace spindle::core
