// The master: forks the workers, respawns the ones that die, reloads on
// SIGHUP, stops gracefully on SIGTERM/SIGINT, and enforces --harakiri.
#pragma once

#include <vector>

#include "core/config.hh"
#include "core/listener.hh"

namespace spindle::core {

// Runs until stopped; returns the exit status for the process.
int run_master(const Config& cfg, std::vector<Listener>& listeners);

}  // namespace spindle::core
