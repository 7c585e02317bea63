// `spindle top ADDR`: a live terminal view of a server's stats socket
// (--stats ADDR, or http://HOST:PORT/ with --stats-http), refreshed every
// second until `q`: workers, their cores, the slowest requests, req/s.
#pragma once

namespace spindle::core {

// argv[0] is "top". Returns the process exit status (2: bad arguments).
int run_top(int argc, char** argv);

}  // namespace spindle::core
