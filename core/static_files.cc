// Static files: which file a request names, and the answer's head. See
// static_files.hh; the bytes are sent by the connection (static_send.cc).
#include "core/static_files.hh"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/config.hh"
#include "core/log.hh"
#include "core/text.hh"

namespace spindle::core {

namespace {

// Used when /etc/mime.types is missing (a minimal container).
constexpr std::pair<const char*, const char*> kBuiltinTypes[] = {
    {"html", "text/html"},      {"htm", "text/html"},         {"css", "text/css"},
    {"js", "text/javascript"},  {"mjs", "text/javascript"},   {"json", "application/json"},
    {"txt", "text/plain"},      {"xml", "application/xml"},   {"svg", "image/svg+xml"},
    {"png", "image/png"},       {"jpg", "image/jpeg"},        {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},       {"webp", "image/webp"},       {"ico", "image/vnd.microsoft.icon"},
    {"woff", "font/woff"},      {"woff2", "font/woff2"},      {"ttf", "font/ttf"},
    {"pdf", "application/pdf"}, {"wasm", "application/wasm"}, {"zip", "application/zip"},
    {"gz", "application/gzip"}, {"mp4", "video/mp4"},         {"mp3", "audio/mpeg"},
    {"csv", "text/csv"},        {"map", "application/json"},
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string real(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? std::string(buf) : std::string();
}

bool under(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

// A path that could step out of its root before any file system call:
// a ".." segment (also what "%2e%2e" decodes to), a NUL, a backslash.
bool hostile(std::string_view path) {
  if (path.find('\0') != std::string_view::npos || path.find('\\') != std::string_view::npos)
    return true;
  std::size_t i = 0;
  while (i <= path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (path.substr(i, j - i) == "..") return true;
    i = j + 1;
  }
  return false;
}

// A client's path for the log: control bytes (a decoded %0a could forge
// a log line) and non-ASCII shown as \xNN.
std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// "bytes=A-B", "bytes=A-", "bytes=-N": one range. Returns 1 with
// [*from, *to] inside the file, 0 to ignore the header (malformed or several
// ranges: a full answer is allowed), -1 when unsatisfiable (416).
int parse_range(std::string_view h, std::uint64_t size, std::uint64_t* from, std::uint64_t* to) {
  if (h.substr(0, 6) != "bytes=") return 0;
  h.remove_prefix(6);
  if (h.find(',') != std::string_view::npos) return 0;
  std::size_t dash = h.find('-');
  if (dash == std::string_view::npos) return 0;
  std::string_view a = h.substr(0, dash), b = h.substr(dash + 1);
  std::uint64_t x = 0, y = 0;
  if (a.empty()) {  // the last N bytes
    if (!parse_u64(b, &y)) return 0;
    if (y == 0 || size == 0) return -1;
    *from = y >= size ? 0 : size - y;
    *to = size - 1;
    return 1;
  }
  if (!parse_u64(a, &x)) return 0;
  if (!b.empty() && (!parse_u64(b, &y) || y < x)) return 0;
  if (x >= size) return -1;
  *from = x;
  *to = b.empty() || y >= size ? size - 1 : y;
  return 1;
}

}  // namespace

// --- set-up ---------------------------------------------------------------

void StaticFiles::load_mime_types(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::string type, ext;
    if (!(words >> type) || type.find('/') == std::string::npos) continue;
    while (words >> ext) mime_.emplace(lower(ext), type);  // the first type wins
  }
}

void StaticFiles::init(const Config& cfg) {
  load_mime_types("/etc/mime.types");
  for (const auto& [ext, type] : kBuiltinTypes) mime_.emplace(ext, type);
  auto add = [&](Root::Mode mode, const std::string& spec) {
    Root r;
    r.mode = mode;
    std::string dir = spec;
    if (mode != Root::kCheck) {
      std::size_t eq = spec.find('=');
      r.prefix = spec.substr(0, eq);
      while (r.prefix.size() > 1 && r.prefix.back() == '/') r.prefix.pop_back();
      if (r.prefix == "/") r.prefix.clear();
      dir = spec.substr(eq + 1);
    }
    r.dir = real(dir);
    struct stat st;
    if (r.dir.empty() || stat(r.dir.c_str(), &st) != 0) {
      log(Level::kWarn, "static: %s: %s; not serving it", dir.c_str(), strerror(errno));
      return;
    }
    r.is_file = S_ISREG(st.st_mode);
    if (!r.is_file && !S_ISDIR(st.st_mode)) {
      log(Level::kWarn, "static: %s is neither a file nor a directory; not serving it",
          dir.c_str());
      return;
    }
    roots_.push_back(std::move(r));
  };
  for (const std::string& d : cfg.check_static) add(Root::kCheck, d);
  for (const std::string& m : cfg.static_maps) add(Root::kMap, m);
  for (const std::string& m : cfg.static_maps2) add(Root::kMap2, m);
  index_ = cfg.static_index;
  for (const std::string& s : cfg.static_safe) {
    std::string r = real(s);
    if (!r.empty()) safe_.push_back(r);
  }
  for (const std::string& e : cfg.static_expires_type) {
    std::size_t eq = e.find('=');
    expires_.emplace_back(e.substr(0, eq), std::atol(e.c_str() + eq + 1));
  }
}

std::string_view StaticFiles::mime_type(std::string_view filename) const {
  std::size_t slash = filename.rfind('/');
  std::size_t dot = filename.rfind('.');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) return {};
  auto it = mime_.find(lower(filename.substr(dot + 1)));
  return it == mime_.end() ? std::string_view() : std::string_view(it->second);
}

// --- lookup ---------------------------------------------------------------

bool StaticFiles::allowed(const std::string& real_path, const std::string& root) const {
  if (under(real_path, root)) return true;
  for (const std::string& s : safe_)
    if (under(real_path, s)) return true;
  return false;
}

StaticFiles::Found StaticFiles::resolve(const Root& root, std::string_view rest,
                                        std::string* file) const {
  std::string candidate = root.dir;
  if (root.is_file) {
    if (!rest.empty()) return Found::kNone;
  } else {
    if (!rest.empty() && rest[0] != '/') candidate += '/';
    candidate.append(rest);
  }
  std::string r = real(candidate);
  if (r.empty()) return Found::kNone;  // missing: the app's
  if (!allowed(r, root.is_file ? r : root.dir)) {
    log(Level::kWarn, "static: %s resolves to %s, outside %s; refused", candidate.c_str(),
        r.c_str(), root.dir.c_str());
    return Found::kForbidden;
  }
  struct stat st;
  if (stat(r.c_str(), &st) != 0) return Found::kNone;
  if (S_ISREG(st.st_mode)) {
    *file = r;
    return Found::kFile;
  }
  if (!S_ISDIR(st.st_mode)) return Found::kNone;
  for (const std::string& name : index_) {
    std::string ir = real(r + "/" + name);
    if (ir.empty() || stat(ir.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (!allowed(ir, root.dir)) {
      log(Level::kWarn, "static: %s/%s resolves to %s, outside %s; refused", r.c_str(),
          name.c_str(), ir.c_str(), root.dir.c_str());
      return Found::kForbidden;
    }
    *file = ir;
    return Found::kFile;
  }
  return Found::kNone;
}

StaticAnswer StaticFiles::lookup(const StaticRequest& req) const {
  StaticAnswer out;
  if (roots_.empty() || (req.method != "GET" && req.method != "HEAD")) return out;
  if (req.path.empty() || req.path[0] != '/') return out;
  bool refused = false;
  std::string file;
  for (const Root& root : roots_) {
    std::string_view rest = req.path;
    if (root.mode == Root::kMap || root.mode == Root::kMap2) {
      const std::string& p = root.prefix;
      if (req.path.compare(0, p.size(), p) != 0) continue;
      if (req.path.size() > p.size() && req.path[p.size()] != '/') continue;
      if (root.mode == Root::kMap) rest = req.path.substr(p.size());
    }
    // Checked before any file system call: a path under a root that names
    // its way out of it is never resolved at all.
    if (hostile(req.path)) {
      log(Level::kWarn, "static: refused a path that climbs out of its root: %s",
          printable(req.path).c_str());
      refused = true;
      break;
    }
    Found f = resolve(root, rest, &file);
    if (f == Found::kFile) return answer(req, file);
    if (f == Found::kForbidden) {
      refused = true;
      break;
    }
  }
  if (refused) {
    out.kind = StaticAnswer::kNoBody;
    out.status = 403;
    out.fields = "Content-Length: 0\r\n";
  }
  return out;
}

StaticAnswer StaticFiles::answer(const StaticRequest& req, const std::string& file) const {
  StaticAnswer out;
  int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) close(fd);
    return out;  // vanished or unreadable: the app's
  }
  const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  const std::int64_t mtime = st.st_mtim.tv_sec;
  std::string last_modified = http_date(mtime);
  out.fields = "Last-Modified: " + last_modified + "\r\n";
  if (!req.if_modified_since.empty()) {
    std::int64_t since = parse_http_date(req.if_modified_since);
    if (since >= 0 && mtime <= since) {
      close(fd);
      out.kind = StaticAnswer::kNoBody;
      out.status = 304;
      return out;
    }
  }
  std::string_view type = mime_type(file);
  if (!type.empty()) {
    out.fields += "Content-Type: ";
    out.fields += type;
    out.fields += "\r\n";
    for (const auto& [t, seconds] : expires_) {
      if (t != type) continue;
      out.fields +=
          "Expires: " + http_date(static_cast<std::int64_t>(time(nullptr)) + seconds) + "\r\n";
      break;
    }
  }
  out.fields += "Accept-Ranges: bytes\r\n";
  std::uint64_t from = 0, to = size ? size - 1 : 0;
  int range = req.range.empty() ? 0 : parse_range(req.range, size, &from, &to);
  // If-Range with anything but this file's exact date (an ETag, an older
  // date) means the client's copy is stale: send it all.
  if (range != 0 && !req.if_range.empty() && req.if_range != last_modified) range = 0;
  if (range < 0) {
    close(fd);
    out.kind = StaticAnswer::kNoBody;
    out.status = 416;
    out.fields += "Content-Range: bytes */" + std::to_string(size) + "\r\nContent-Length: 0\r\n";
    return out;
  }
  out.kind = StaticAnswer::kFile;
  out.fd = fd;
  if (range > 0) {
    out.status = 206;
    out.offset = static_cast<off_t>(from);
    out.length = to - from + 1;
    out.fields += "Content-Range: bytes " + std::to_string(from) + "-" + std::to_string(to) + "/" +
                  std::to_string(size) + "\r\n";
  } else {
    out.status = 200;
    out.length = size;
  }
  out.fields += "Content-Length: " + std::to_string(out.length) + "\r\n";
  return out;
}

// --- dates ----------------------------------------------------------------

std::string StaticFiles::http_date(std::int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  gmtime_r(&tt, &tm);
  char buf[64];
  std::size_t n = strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

std::int64_t StaticFiles::parse_http_date(std::string_view s) {
  // IMF-fixdate (RFC 9110 5.6.7), the only form a server generates; the
  // obsolete forms are rare enough that a full answer is the safe reply.
  static const char* kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  if (s.size() != 29 || s[3] != ',' || s.substr(25) != " GMT") return -1;
  auto num = [&](std::size_t at, std::size_t len, int* out) {
    int v = 0;
    for (std::size_t i = at; i < at + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
  };
  struct tm tm {};
  int day, year, hh, mm, ss;
  if (!num(5, 2, &day) || !num(12, 4, &year) || !num(17, 2, &hh) || !num(20, 2, &mm) ||
      !num(23, 2, &ss))
    return -1;
  const char* m = strstr(kMonths, std::string(s.substr(8, 3)).c_str());
  if (!m || (m - kMonths) % 3 != 0) return -1;
  tm.tm_mday = day;
  tm.tm_mon = static_cast<int>((m - kMonths) / 3);
  tm.tm_year = year - 1900;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  return static_cast<std::int64_t>(timegm(&tm));
}

}  // namespace spindle::core
