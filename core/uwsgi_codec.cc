#include "core/uwsgi_codec.hh"

namespace spindle::core::uwsgi {

namespace {
std::uint16_t le16(const char* p) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(p[0]) |
                                    (static_cast<unsigned char>(p[1]) << 8));
}
void put_le16(std::string* out, std::size_t v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>((v >> 8) & 0xff));
}
}  // namespace

Status parse_header(const char* p, std::size_t n, PacketHeader* out) {
  if (n < kHeaderSize) return Status::kNeedMore;
  out->modifier1 = static_cast<std::uint8_t>(p[0]);
  out->size = le16(p + 1);
  out->modifier2 = static_cast<std::uint8_t>(p[3]);
  return Status::kOk;
}

Status parse_vars(const char* p, std::size_t n, std::vector<Var>* out) {
  std::size_t i = 0;
  while (i < n) {
    if (n - i < 2) return Status::kMalformed;
    std::size_t klen = le16(p + i);
    i += 2;
    if (klen == 0 || n - i < klen + 2) return Status::kMalformed;
    std::string_view key(p + i, klen);
    i += klen;
    std::size_t vlen = le16(p + i);
    i += 2;
    if (n - i < vlen) return Status::kMalformed;
    out->push_back(Var{key, std::string_view(p + i, vlen)});
    i += vlen;
  }
  return Status::kOk;
}

void append_var(std::string* out, std::string_view name, std::string_view value) {
  put_le16(out, name.size());
  out->append(name);
  put_le16(out, value.size());
  out->append(value);
}

std::string encode_request(std::span<const Var> vars, std::uint8_t modifier1,
                           std::uint8_t modifier2) {
  std::string body;
  for (const Var& v : vars) append_var(&body, v.name, v.value);
  std::string out;
  out.push_back(static_cast<char>(modifier1));
  put_le16(&out, body.size());
  out.push_back(static_cast<char>(modifier2));
  out += body;
  return out;
}

}  // namespace spindle::core::uwsgi
