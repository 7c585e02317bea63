// The FIFO of posted tasks, for loop engines: post() pushes, and the engine
// drains it from whatever "soon" hook it has (libev's check watcher).
#pragma once

#include "core/loop.hh"

namespace spindle::core {

class TaskQueue {
 public:
  // Queues t unless it is queued already. True if the queue was empty, so
  // the engine must schedule a drain.
  bool push(Task& t) {
    if (t.queued) return false;
    t.queued = true;
    t.next = nullptr;
    bool was_empty = tail_ == nullptr;
    if (tail_) tail_->next = &t;
    else head_ = &t;
    tail_ = &t;
    return was_empty;
  }

  // Runs the tasks queued so far, in order. Tasks they post wait for the
  // next drain, so a core that keeps yielding cannot starve the loop.
  void drain() {
    Task* t = head_;
    head_ = tail_ = nullptr;
    while (t) {
      Task* next = t->next;
      t->queued = false;
      t->next = nullptr;
      t->cb(t);
      t = next;
    }
  }

  bool empty() const { return head_ == nullptr; }

 private:
  Task* head_ = nullptr;
  Task* tail_ = nullptr;
};

}  // namespace spindle::core
