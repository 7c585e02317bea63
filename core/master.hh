// The master: forks the workers, respawns the ones that die, reloads on
// SIGHUP, stops gracefully on SIGTERM/SIGINT, and enforces --harakiri.
#pragma once

#include <string>
#include <vector>

#include "core/config.hh"
#include "core/listener.hh"

namespace spindle::core {

// Runs until stopped; returns the exit status for the process. argv is the
// program's own, for the re-execution that a SIGHUP reload does.
int run_master(const Config& cfg, std::vector<Listener>& listeners, char** argv);

// A master started by such a re-execution inherits its sockets and the old
// workers (which it stops once its own are up). Returns false, with a reason,
// if the environment names sockets that do not match the options.
// The working directory spindle started in (relative paths in argv are
// relative to it, whatever --chdir did since).
void remember_start_dir();

bool adopt_inherited_sockets(std::vector<Listener>& listeners, std::string* why);

}  // namespace spindle::core
