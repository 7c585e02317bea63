// --log-master: one process writes the log.
//
// Without it every process (the master, each worker, an attached daemon)
// writes its own lines to the log file it inherited. With it the master
// makes a socket pair before anything forks and points its own stdout and
// stderr into it, so every child writes there too; a thread of the master
// reads it and writes the lines to the log (stderr, --logto, --logger
// files). The master's own lines go to the log directly.
//
// Lines stay whole: the read end has SO_PASSCRED, so each read carries the
// bytes of one writer and its pid; the thread keeps each process's partial
// line until its newline (or until --log-master-bufsize bytes, or a second
// of silence) and writes only complete lines, each batch with one write(2).
// Access lines have a pair of their own when --req-logger names files.
//
// Because only the master holds the log files, reopening them there is
// enough: --touch-logreopen FILE (which, as in uWSGI, turns the log master
// on) reopens them when FILE's mtime changes, after logrotate moved them.
//
// Threads: start, stop, reopen and the touch check are called by the
// master's main thread only; child_side() by a child right after fork.
#pragma once

#include <string>

namespace spindle::core {

class OptionTable;

// log-master, threaded-logger, log-master-bufsize, touch-logreopen.
void add_log_master_options(OptionTable& table);

namespace log_master {

bool enabled();

// First thing in run_server(): a master that re-executed itself for a
// reload takes back the socket pairs the old one passed on (old workers
// still write into them) and its own stderr.
void adopt_after_exec();

// In the master before the first fork: makes (or adopts) the pairs, moves
// stdout/stderr into them and starts the thread. "" or why it failed.
std::string start();

// In a child right after fork: the child's log lines and its stdout/stderr
// go to the master (none of the master's files stay open in it).
void child_side();

// Stops the thread once everything readable is written (a stop, or just
// before a reload's exec, which then passes the pairs on: pass_on=true).
void stop(bool pass_on);
// The exec after stop(true) failed: this master goes on reading.
void resume_after_failed_exec();

// --touch-logreopen: true once per change of a watched file's mtime.
bool touched();

}  // namespace log_master

// Reopens the log files by name (--logto / --daemonize FILE, --logger and
// --req-logger files) onto the same descriptors, and logs why. With the log
// master only the master writes them; without it, processes forked later
// inherit the new files.
void reopen_logs(const char* why);

}  // namespace spindle::core
