// Why a killed worker was stuck: before the master kills a worker
// (--harakiri, --reload-on-rss, a stop that outlived its mercy), it asks the
// worker for a dump of every core that holds a request: state, request
// line, how long it has run, and the language plugin's traceback of the
// code it is in. The worker writes the dump from a signal handler (on its
// own alternate stack, so it works whatever the worker is stuck in, even a
// loop that never yields), into a memory file the master made before the
// fork; the master waits a bounded moment for it and logs it.
#pragma once

#include <sys/types.h>

namespace spindle::core {

// The signal that asks a worker for its dump (a real-time signal that
// nothing else in the server uses).
int dump_signal();

// Writes the traceback of what `core` runs to fd, with async-signal-safe
// calls only (core == -1: the worker's main context, outside every core).
// Registered by a language plugin in its worker_start hook.
using TracebackDumper = void (*)(int fd, int core);
void set_traceback_dumper(TracebackDumper dumper);

// In new worker `id`: installs the dump signal's handler.
void install_stuck_dump(int id);

// In the master, just before it kills worker `id`: asks for the dump, waits
// for it at most a second, and logs it (one line per line, level WARN).
void log_stuck_worker(int id, pid_t pid);

}  // namespace spindle::core
