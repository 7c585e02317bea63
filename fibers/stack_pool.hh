// Fixed-size context stacks with a guard page, recycled through a free list.
//
// Layout of one mapping (addresses grow to the right):
//
//   [ guard page, PROT_NONE ][ usable stack, size() bytes, read/write ]
//   ^ base                    ^ sp - size                            ^ sp (stack_context::sp)
//
// Stacks grow down, so running off the end of one touches its own guard page
// and the process dies with SIGSEGV instead of scribbling over a neighbour.
//
// Ownership and lifetime
//  - The pool owns every mapping it ever made. deallocate() does not unmap:
//    the stack goes on a LIFO free list and the next allocate() hands it back
//    (its pages are still resident, so a reused stack starts warm).
//  - The destructor unmaps everything, in use or not; any context still
//    living on one of these stacks is gone with it.
//  - One thread only; no locking.
//
// Cost: two kernel mappings (VMAs) per stack, so vm.max_map_count (65530 by
// default) caps a process at roughly 30,000 stacks.
#pragma once

#include <boost/context/stack_context.hpp>
#include <cstddef>
#include <vector>

namespace spindle::fibers {

class StackPool {
 public:
  // Stacks smaller than this are rounded up to it: the fiber's own control
  // data and the first frames of any entry need a few KiB.
  static constexpr std::size_t kMinStackSize = 16 * 1024;

  // stack_size is rounded up to whole pages (and to kMinStackSize).
  explicit StackPool(std::size_t stack_size);
  ~StackPool();

  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // A stack from the free list, or a fresh mapping. On failure (mmap refused,
  // out of memory) returns a stack_context whose sp is nullptr.
  boost::context::stack_context allocate() noexcept;

  // Puts a stack obtained from allocate() back on the free list.
  void deallocate(boost::context::stack_context& sctx) noexcept;

  std::size_t stack_size() const { return stack_size_; }   // usable bytes per stack
  std::size_t mapped() const { return mappings_.size(); }  // stacks ever mapped
  std::size_t pooled() const { return pooled_; }           // stacks on the free list

  static std::size_t page_size();

 private:
  // A free stack stores the link to the next free one in its top bytes: those
  // pages are always resident, and the free list then needs no allocation.
  struct FreeNode {
    FreeNode* next;
  };

  static FreeNode* node_of(void* sp);

  std::size_t stack_size_;
  std::size_t map_size_;         // stack_size_ plus the guard page
  std::vector<void*> mappings_;  // base address of every mapping
  FreeNode* free_ = nullptr;
  std::size_t pooled_ = 0;
};

}  // namespace spindle::fibers
