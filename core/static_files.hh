// Static files, answered by the server before any app runs (uWSGI's
// --static-map, --static-map2, --check-static, --static-index,
// --static-safe, --static-expires-type).
//
// StaticFiles decides; it does no network I/O. For each complete request
// head the connection asks lookup(): kPass means "not a static file, call the
// app"; anything else is a finished answer (status, header lines, and for a
// body an open file descriptor with the byte range to send), which the
// connection writes from the loop with sendfile(2), taking no async core.
//
// Which file
//  - --check-static DIR: DIR + PATH_INFO, for every request;
//  - --static-map /url=DIR: a path at or under /url maps to DIR + the rest
//    (/url itself when DIR is a single file);
//  - --static-map2 /url=DIR: DIR + the whole path.
// Tried in that order; the first existing file wins. Only GET and HEAD are
// served; other methods, missing files, and directories with no
// --static-index file go to the app.
//
// Safety: PATH_INFO is already percent-decoded, so "%2e%2e" arrives as "..".
// A path with a ".." segment, a NUL byte or a backslash, or a file whose real
// path (symlinks resolved) lies outside its root and outside every
// --static-safe directory, is answered 403 and logged; nothing outside the
// roots is ever opened.
//
// Lifetime: one StaticFiles per worker, built after --chdir; roots are
// resolved (realpath) once, at init. Not thread-safe (one loop thread).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace spindle::core {

struct Config;

struct StaticRequest {
  std::string_view method;             // "GET"
  std::string_view path;               // PATH_INFO, percent-decoded
  std::string_view if_modified_since;  // header values, empty when absent
  std::string_view range;
  std::string_view if_range;
};

struct StaticAnswer {
  enum Kind { kPass, kFile, kNoBody } kind = kPass;
  int status = 0;      // 200, 206, 304, 403, 416
  std::string fields;  // "Name: value\r\n"... (no status line, no Connection)
  int fd = -1;         // kFile: the open file (the caller closes it)
  off_t offset = 0;    // kFile: the byte range to send
  std::uint64_t length = 0;
};

class StaticFiles {
 public:
  // Reads the options, resolves the roots and loads the MIME table (from
  // /etc/mime.types, else a built-in list). A root that does not exist is
  // logged and skipped, as uWSGI does.
  void init(const Config& cfg);
  bool enabled() const { return !roots_.empty(); }

  // HEAD requests get the GET answer's fields and no body; the caller knows
  // the method, so kFile is returned for both.
  StaticAnswer lookup(const StaticRequest& req) const;

  // The MIME type for a file name ("" when unknown), exposed for tests.
  std::string_view mime_type(std::string_view filename) const;
  void load_mime_types(const std::string& path);  // adds to the table

  // "Sun, 06 Nov 1994 08:49:37 GMT" <-> seconds since the epoch (-1: bad).
  static std::string http_date(std::int64_t t);
  static std::int64_t parse_http_date(std::string_view s);

 private:
  struct Root {
    enum Mode { kCheck, kMap, kMap2 } mode = kMap;
    std::string prefix;  // URL prefix (kMap, kMap2), "" for kCheck
    std::string dir;     // realpath of the directory (or file)
    bool is_file = false;
  };
  enum class Found { kNone, kFile, kForbidden };

  Found resolve(const Root& root, std::string_view rest, std::string* file) const;
  bool allowed(const std::string& real, const std::string& root) const;
  StaticAnswer answer(const StaticRequest& req, const std::string& file) const;

  std::vector<Root> roots_;
  std::vector<std::string> index_;
  std::vector<std::string> safe_;                         // realpaths
  std::vector<std::pair<std::string, long>> expires_;     // MIME type -> seconds
  std::map<std::string, std::string, std::less<>> mime_;  // extension -> type
};

}  // namespace spindle::core
