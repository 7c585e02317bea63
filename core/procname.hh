// Process titles, as `ps` shows them (--auto-procname, --procname,
// --procname-master, --procname-prefix[-spaced], --procname-append): the
// argv area is overwritten in place and the kernel's short name (comm) set.
#pragma once

#include <string>

namespace spindle::core {

struct Config;

// Records where argv lives. Call before anything reads argv again: the
// caller keeps its own copy of the arguments (a reload re-executes with it).
void procname_init(int argc, char** argv);

// The title for the master (worker_id 0) or a worker, or "" when no
// procname option asks for one.
std::string procname_for(const Config& cfg, int worker_id);

void set_procname(const std::string& title);

}  // namespace spindle::core
