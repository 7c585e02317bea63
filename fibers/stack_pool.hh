// Fixed-size context stacks carved from large mappings (slabs), each with a
// guard page below it, recycled through free lists.
//
// Layout of one slab (addresses grow to the right):
//
//   [ guard ][ stack 0 ][ guard ][ stack 1 ] ... [ guard ][ stack n-1 ]
//            ^ sp - size          ^ sp (stack_context::sp)
//
// Stacks grow down, so running off the end of one touches its own guard page
// and the process dies with SIGSEGV instead of scribbling over a neighbour.
//
// Why slabs: the kernel caps the mappings (VMAs) of a process at
// vm.max_map_count (65,530 by default). A mapping per stack plus an mprotect'd
// guard inside it costs two each and capped a worker near 32,000 stacks. Here
// a slab is one mapping for up to kMaxSlabStacks stacks, and the guards are
// guard markers (madvise MADV_GUARD_INSTALL, Linux 6.13+), which fault like
// PROT_NONE but do not split the mapping. On an older kernel the guards fall
// back to mprotect and each stack costs two mappings again; mappings_for()
// says how many a number of stacks needs, so start-up can refuse early.
//
// Slabs grow: the first holds one stack and each next one as many as all
// before it, up to kMaxSlabStacks, so a small server maps little and a large
// one few mappings.
//
// Ownership and lifetime
//  - The pool owns every slab. deallocate() never unmaps: the stack goes on
//    the warm free list (its pages stay resident, so a reused stack starts
//    warm) or, once keep_warm stacks are warm, its pages are handed back to
//    the kernel (MADV_DONTNEED) and it goes on the cold list.
//  - allocate() prefers warm stacks, then cold ones, then carves new ones.
//  - The destructor unmaps everything, in use or not; any context still
//    living on one of these stacks is gone with it.
//  - One thread only; no locking.
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
  // The most stacks one slab holds.
  static constexpr std::size_t kMaxSlabStacks = 128;
  // Stacks kept resident on the free list unless the caller says otherwise.
  static constexpr std::size_t kKeepWarm = 64;

  // stack_size is rounded up to whole pages (and to kMinStackSize).
  explicit StackPool(std::size_t stack_size, std::size_t keep_warm = kKeepWarm);
  ~StackPool();

  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // A stack from a free list, or a fresh one. On failure (mmap refused, out
  // of memory) returns a stack_context whose sp is nullptr.
  boost::context::stack_context allocate() noexcept;

  // Puts a stack obtained from allocate() back on a free list.
  void deallocate(boost::context::stack_context& sctx) noexcept;

  std::size_t stack_size() const { return stack_size_; }  // usable bytes per stack
  std::size_t slabs() const { return slabs_.size(); }      // mappings made
  std::size_t carved() const { return carved_; }           // stacks ever handed out fresh
  std::size_t pooled() const { return warm_.size() + cold_.size(); }  // on the free lists
  std::size_t warm() const { return warm_.size(); }

  static std::size_t page_size();

  // Whether this kernel offers guard markers (probed once).
  static bool guard_markers();

  // Address space one stack takes: its size rounded up, plus the guard.
  static std::size_t stride_for(std::size_t stack_size);

  // Kernel mappings that `stacks` stacks of stack_size bytes take at most.
  static std::size_t mappings_for(std::size_t stacks, std::size_t stack_size);

 private:
  struct Slab {
    char* base;
    std::size_t bytes;
  };

  bool new_slab() noexcept;

  std::size_t stack_size_;
  std::size_t stride_;  // stack_size_ plus its guard page
  std::size_t keep_warm_;
  std::vector<Slab> slabs_;
  char* next_ = nullptr;     // the lowest byte of the next stack to carve
  std::size_t left_ = 0;     // stacks left to carve in the newest slab
  std::size_t carved_ = 0;
  std::vector<void*> warm_;  // sp of free stacks whose pages are resident (LIFO)
  std::vector<void*> cold_;  // sp of free stacks handed back to the kernel
};

}  // namespace spindle::fibers
