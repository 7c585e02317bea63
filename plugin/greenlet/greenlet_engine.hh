// The greenlet suspend engine: async cores as real greenlets.
//
// Each core runs in a greenlet (from the python3-greenlet package, through
// its C API) whose parent is the worker's main greenlet, the one the event
// loop runs on. resume() switches into a core's greenlet, suspend() switches
// back to the main greenlet. greenlet saves and restores the interpreter's
// per-greenlet state (frames, exception state, contextvars, recursion depth)
// on every switch, so the cores share the worker's one thread state and the
// python plugin gives them none of their own.
//
// Because the cores are ordinary greenlets, application code may switch
// greenlets itself, as uWSGI greenlet apps do:
//
//     me = greenlet.getcurrent()
//     ioloop.call_later(0.1, me.switch)   # a loop callback resumes us
//     me.parent.switch()                  # back to the loop
//
// The engine therefore never trusts a cached "running core": current() asks
// greenlet which greenlet runs and maps it (or, for a greenlet the app
// created inside a request, its nearest core ancestor) to the core.
//
// Requirements (the caller's)
//  - The interpreter is initialised and the GIL is held by the calling
//    thread, for every call, from creation to destruction. The python plugin
//    guarantees both on the worker's main thread.
//  - The engine is created on the thread's main stack, outside any greenlet
//    but the main one: that greenlet becomes every core's parent.
#pragma once

#include <memory>

#include "fibers/suspend.hh"

namespace spindle::greenlet {

// nullptr (after logging why) when greenlet cannot be imported.
std::unique_ptr<fibers::Engine> make_greenlet_engine();

}  // namespace spindle::greenlet
