// Start-up steps of a deployment, in the order server.cc runs them: log
// files and daemonizing, the pidfile, the change of user and group, and the
// clean-up at exit (--vacuum).
#pragma once

#include <string>
#include <vector>

namespace spindle::core {

struct Config;

// --logto FILE (or the file of --daemonize FILE): stdout and stderr go to
// FILE, appended; --logfile-chmod applies. Returns "" or the reason.
std::string log_to_file(const std::string& path, const std::string& chmod_mode);

// The file of the last log_to_file() ("" when the log is the inherited
// stderr), opened anew (for appending, --logfile-chmod applied): its
// descriptor, or -1 with *why set.
const std::string& log_file_path();
int reopen_log_file(std::string* why);

// --daemonize FILE: the process detaches (fork, setsid, stdin from
// /dev/null) and logs to FILE. The parent exits 0 once the child is on its
// own. Returns "" or the reason (in the parent, before forking).
std::string daemonize(const std::string& logfile, const std::string& chmod_mode);

// --pidfile / --safe-pidfile: the master's pid. The safe form writes a
// temporary file and renames it, so a reader never sees it half written.
std::string write_pidfile(const std::string& path, bool safe);

// --gid then --uid (names or numbers; with a user name its groups too).
std::string drop_privileges(const std::string& uid, const std::string& gid);

// --vacuum: removes the unix socket files and the pidfiles.
void vacuum(const Config& cfg, const std::vector<std::string>& unix_paths);

}  // namespace spindle::core
