// permessage-deflate: the offer, and whole-message deflate/inflate on
// per-thread zlib streams. See websocket_deflate.hh.
#include "core/websocket_deflate.hh"

#include <zlib.h>

#include <cstring>
#include <vector>

#include "core/text.hh"
#include "core/websocket_codec.hh"

namespace spindle::core::ws {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A window-bits value: 8..15, digits only (quotes allowed, RFC 7692 7.1.2).
int window_value(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty() || v.size() > 2) return -1;
  int n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n >= 8 && n <= 15 ? n : -1;
}

// One permessage-deflate offer's parameters (after the name). -1: decline.
int accept_offer(std::string_view params) {
  int server_bits = 0;  // 0: not limited by the offer
  bool seen[4] = {false, false, false, false};
  while (!params.empty()) {
    std::size_t semi = params.find(';');
    std::string_view p = trim(params.substr(0, semi));
    params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
    if (p.empty()) return -1;
    std::size_t eq = p.find('=');
    std::string_view name = trim(p.substr(0, eq));
    std::string_view value = eq == std::string_view::npos ? "" : trim(p.substr(eq + 1));
    int which;
    if (iequals(name, "server_no_context_takeover")) {
      which = 0;
      if (eq != std::string_view::npos) return -1;
    } else if (iequals(name, "client_no_context_takeover")) {
      which = 1;
      if (eq != std::string_view::npos) return -1;
    } else if (iequals(name, "server_max_window_bits")) {
      which = 2;
      server_bits = window_value(value);
      // zlib makes no raw stream with a 256-byte window: decline 8.
      if (server_bits < 9) return -1;
    } else if (iequals(name, "client_max_window_bits")) {
      which = 3;  // inflate takes any window; no answer is needed
      if (eq != std::string_view::npos && window_value(value) < 0) return -1;
    } else {
      return -1;
    }
    if (seen[which]) return -1;
    seen[which] = true;
  }
  return server_bits;
}

struct Deflater {
  z_stream z{};
  int bits = 0;
  ~Deflater() {
    if (bits) deflateEnd(&z);
  }
};

struct Inflater {
  z_stream z{};
  bool ready = false;
  ~Inflater() {
    if (ready) inflateEnd(&z);
  }
};

thread_local Deflater t_deflaters[16];  // by window bits
thread_local Inflater t_inflater;
thread_local std::string t_out;

}  // namespace

bool deflate_negotiate(std::string_view offers, std::string* response, int* window_bits) {
  while (!offers.empty()) {
    std::size_t comma = offers.find(',');
    std::string_view offer = trim(offers.substr(0, comma));
    offers = comma == std::string_view::npos ? std::string_view() : offers.substr(comma + 1);
    std::size_t semi = offer.find(';');
    if (!iequals(trim(offer.substr(0, semi)), "permessage-deflate")) continue;
    int bits = accept_offer(semi == std::string_view::npos ? "" : offer.substr(semi + 1));
    if (bits < 0) continue;
    *response = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    if (bits) *response += "; server_max_window_bits=" + std::to_string(bits);
    *window_bits = bits ? bits : 15;
    return true;
  }
  return false;
}

const std::string& deflate_message(std::string_view data, int window_bits) {
  Deflater& d = t_deflaters[window_bits];
  if (!d.bits) {
    if (deflateInit2(&d.z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -window_bits, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      t_out.assign(data);  // not reached short of memory; see the caller
      return t_out;
    }
    d.bits = window_bits;
  } else {
    deflateReset(&d.z);
  }
  t_out.resize(deflateBound(&d.z, data.size()) + 16);
  d.z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  d.z.avail_in = static_cast<uInt>(data.size());
  std::size_t have = 0;
  for (;;) {
    d.z.next_out = reinterpret_cast<Bytef*>(t_out.data() + have);
    d.z.avail_out = static_cast<uInt>(t_out.size() - have);
    deflate(&d.z, Z_SYNC_FLUSH);
    have = t_out.size() - d.z.avail_out;
    if (d.z.avail_in == 0 && d.z.avail_out > 0) break;
    t_out.resize(t_out.size() * 2);
  }
  // A sync flush ends with an empty stored block, 00 00 ff ff: RFC 7692
  // 7.2.1 has the sender take it off.
  if (have >= 4 && memcmp(t_out.data() + have - 4, "\0\0\xff\xff", 4) == 0) have -= 4;
  t_out.resize(have);
  return t_out;
}

bool inflate_message(std::string* msg, std::uint64_t max_size, int* close_code) {
  Inflater& f = t_inflater;
  if (!f.ready) {
    if (inflateInit2(&f.z, -15) != Z_OK) {
      *close_code = kInternalError;
      return false;
    }
    f.ready = true;
  } else {
    inflateReset(&f.z);
  }
  msg->append("\0\0\xff\xff", 4);
  std::string& out = t_out;
  out.clear();
  f.z.next_in = reinterpret_cast<Bytef*>(msg->data());
  f.z.avail_in = static_cast<uInt>(msg->size());
  char chunk[16384];
  for (;;) {
    f.z.next_out = reinterpret_cast<Bytef*>(chunk);
    f.z.avail_out = sizeof chunk;
    int rc = inflate(&f.z, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      *close_code = kInvalidPayload;
      return false;
    }
    std::size_t got = sizeof chunk - f.z.avail_out;
    if (max_size && out.size() + got > max_size) {
      *close_code = kTooBig;
      out.clear();
      return false;
    }
    out.append(chunk, got);
    if (rc == Z_STREAM_END) {
      // A final block may end the message; only our 00 00 ff ff may follow.
      if (f.z.avail_in > 4) {
        *close_code = kInvalidPayload;
        return false;
      }
      break;
    }
    if (rc == Z_BUF_ERROR || (f.z.avail_in == 0 && f.z.avail_out > 0)) break;
  }
  // The message keeps a buffer of its own size, not the thread's.
  msg->assign(out);
  if (out.capacity() > (1u << 20)) std::string().swap(out);
  return true;
}

}  // namespace spindle::core::ws
