#include "core/deploy.hh"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/config.hh"
#include "core/log.hh"

namespace spindle::core {

namespace {

std::string errno_text(const std::string& what) { return what + ": " + strerror(errno); }

bool all_digits(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

std::string g_log_path, g_log_mode;  // of the last log_to_file()

int open_log_file(const std::string& path, const std::string& chmod_mode, std::string* why) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    *why = errno_text("cannot open " + path);
    return -1;
  }
  if (!chmod_mode.empty()) {
    mode_t mode = static_cast<mode_t>(std::strtoul(chmod_mode.c_str(), nullptr, 8));
    if (fchmod(fd, mode) < 0) {
      *why = errno_text("logfile-chmod " + path);
      close(fd);
      return -1;
    }
  }
  return fd;
}

}  // namespace

const std::string& log_file_path() { return g_log_path; }

int reopen_log_file(std::string* why) {
  if (g_log_path.empty() || g_log_path == "/dev/null") return -1;
  return open_log_file(g_log_path, g_log_mode, why);
}

std::string log_to_file(const std::string& path, const std::string& chmod_mode) {
  std::string why;
  int fd = open_log_file(path, chmod_mode, &why);
  if (fd < 0) return why;
  g_log_path = path;
  g_log_mode = chmod_mode;
  std::fflush(stdout);
  std::fflush(stderr);
  dup2(fd, STDOUT_FILENO);
  dup2(fd, STDERR_FILENO);
  close(fd);
  return "";
}

std::string daemonize(const std::string& logfile, const std::string& chmod_mode) {
  pid_t pid = fork();
  if (pid < 0) return errno_text("fork");
  if (pid > 0) _exit(0);
  setsid();
  // A second fork: the daemon is no session leader and never gets a terminal.
  pid = fork();
  if (pid < 0) return errno_text("fork");
  if (pid > 0) _exit(0);
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, STDIN_FILENO);
    if (null != STDIN_FILENO) close(null);
  }
  return log_to_file(logfile.empty() ? "/dev/null" : logfile, chmod_mode);
}

std::string write_pidfile(const std::string& path, bool safe) {
  std::string target = safe ? path + ".tmp" + std::to_string(getpid()) : path;
  std::FILE* f = std::fopen(target.c_str(), "w");
  if (!f) return errno_text("cannot write " + target);
  std::fprintf(f, "%d\n", static_cast<int>(getpid()));
  if (std::fclose(f) != 0) return errno_text("cannot write " + target);
  if (safe && rename(target.c_str(), path.c_str()) < 0) {
    unlink(target.c_str());
    return errno_text("cannot rename to " + path);
  }
  return "";
}

std::string drop_privileges(const std::string& uid, const std::string& gid) {
  uid_t new_uid = getuid();
  gid_t new_gid = getgid();
  const char* user_name = nullptr;
  if (!uid.empty()) {
    passwd* pw = all_digits(uid) ? getpwuid(static_cast<uid_t>(std::stoul(uid)))
                                 : getpwnam(uid.c_str());
    if (!pw && !all_digits(uid)) return "--uid: no user '" + uid + "'";
    new_uid = pw ? pw->pw_uid : static_cast<uid_t>(std::stoul(uid));
    if (pw) user_name = pw->pw_name;
    if (gid.empty() && pw) new_gid = pw->pw_gid;
  }
  if (!gid.empty()) {
    if (all_digits(gid)) {
      new_gid = static_cast<gid_t>(std::stoul(gid));
    } else if (struct group* gr = getgrnam(gid.c_str())) {
      new_gid = gr->gr_gid;
    } else {
      return "--gid: no group '" + gid + "'";
    }
  }
  // Group first: once the user changed, the group may no longer be.
  if (!gid.empty() || !uid.empty()) {
    if (new_gid != getgid() || new_gid != getegid()) {
      if (setgid(new_gid) < 0) return errno_text("--gid " + std::to_string(new_gid));
    }
    if (geteuid() == 0) {
      if (user_name ? initgroups(user_name, new_gid) < 0 : setgroups(1, &new_gid) < 0)
        return errno_text("setgroups");
    }
  }
  if (!uid.empty() && (new_uid != getuid() || new_uid != geteuid())) {
    if (setuid(new_uid) < 0) return errno_text("--uid " + std::to_string(new_uid));
  }
  return "";
}

void vacuum(const Config& cfg, const std::vector<std::string>& unix_paths) {
  std::vector<std::string> files = unix_paths;
  for (const std::string* p : {&cfg.pidfile, &cfg.pidfile2})
    if (!p->empty()) files.push_back(*p);
  for (const std::string& f : files) {
    // After --uid the master may no longer be allowed to; say so.
    if (unlink(f.c_str()) < 0 && errno != ENOENT)
      log(Level::kWarn, "--vacuum: cannot remove %s: %s", f.c_str(), strerror(errno));
  }
}

}  // namespace spindle::core
