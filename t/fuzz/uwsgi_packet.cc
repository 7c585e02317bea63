// libFuzzer target: the uwsgi protocol decoder and the CGI variables built
// from a packet.
//
// Checks, beyond "no crash": a vars block that parses encodes back to the
// same bytes; a packet that is accepted carries exactly one REQUEST_METHOD
// and no repeated variable other than an HTTP_* header, whose values are
// joined into one.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/listener.hh"
#include "core/request_vars.hh"
#include "core/uwsgi_codec.hh"

namespace {

namespace uwsgi = spindle::core::uwsgi;
using spindle::core::Var;

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const char* p = reinterpret_cast<const char*>(data);
  uwsgi::PacketHeader h;
  if (uwsgi::parse_header(p, size, &h) != uwsgi::Status::kOk) return 0;
  // The declared size, or what there is: both are blocks a peer can send.
  std::size_t n = size - uwsgi::kHeaderSize;
  if (h.size < n) n = h.size;
  static std::vector<Var> vars;
  vars.clear();
  if (uwsgi::parse_vars(p + uwsgi::kHeaderSize, n, &vars) != uwsgi::Status::kOk) return 0;
  for (const Var& v : vars) check(!v.name.empty());
  std::string again = uwsgi::encode_request(vars, h.modifier1, h.modifier2);
  check(again.size() == uwsgi::kHeaderSize + n);
  check(std::string_view(again).substr(uwsgi::kHeaderSize) ==
        std::string_view(p + uwsgi::kHeaderSize, n));

  spindle::core::Listener listener;
  listener.server_name = "127.0.0.1";
  listener.server_port = "3031";
  static spindle::core::VarsBuilder out;
  std::uint64_t length = 0;
  std::string why;
  if (!build_uwsgi_vars(vars, listener, &out, &length, &why)) {
    check(!why.empty());
    return 0;
  }
  std::span<const Var> got = out.finish();
  std::size_t methods = 0;
  std::set<std::string_view> names;
  for (const Var& v : got) {
    methods += v.name == "REQUEST_METHOD";
    check(names.insert(v.name).second);
  }
  check(methods == 1);
  check(!out.find("REQUEST_METHOD").empty());
  return 0;
}
