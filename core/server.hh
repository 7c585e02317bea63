// Start-up: options, sockets, plugins' master hooks, then the master.
#pragma once

namespace spindle::core {

// The whole program; returns the process exit status (2: bad options).
int run_server(int argc, char** argv);

}  // namespace spindle::core
