#include "fibers/stack_pool.hh"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <new>

// Linux 6.13 guard markers; older C libraries do not name them.
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace spindle::fibers {

namespace {

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// MAP_NORESERVE: a stack is mostly untouched address space; only the pages a
// context really uses should count against memory.
void* map_stacks(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

bool install_guard(char* page) {
  if (StackPool::guard_markers())
    return ::madvise(page, StackPool::page_size(), MADV_GUARD_INSTALL) == 0;
  return ::mprotect(page, StackPool::page_size(), PROT_NONE) == 0;
}

}  // namespace

std::size_t StackPool::page_size() {
  static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

bool StackPool::guard_markers() {
  static const bool supported = [] {
    void* p = map_stacks(2 * page_size());
    if (p == nullptr) return false;
    bool ok = ::madvise(p, page_size(), MADV_GUARD_INSTALL) == 0;
    ::munmap(p, 2 * page_size());
    return ok;
  }();
  return supported;
}

std::size_t StackPool::mappings_for(std::size_t stacks, std::size_t /*stack_size*/) {
  if (!guard_markers()) return 2 * stacks;  // each mprotect'd guard splits its slab
  std::size_t slabs = 0, held = 0;
  while (held < stacks) {
    held += std::min(std::max<std::size_t>(held, 1), kMaxSlabStacks);
    ++slabs;
  }
  return slabs;
}

std::size_t StackPool::stride_for(std::size_t stack_size) {
  return round_up(std::max(stack_size, kMinStackSize), page_size()) + page_size();
}

StackPool::StackPool(std::size_t stack_size, std::size_t keep_warm)
    : stack_size_(stride_for(stack_size) - page_size()),
      stride_(stride_for(stack_size)),
      keep_warm_(keep_warm) {
  warm_.reserve(keep_warm_);
}

StackPool::~StackPool() {
  for (const Slab& s : slabs_) ::munmap(s.base, s.bytes);
}

bool StackPool::new_slab() noexcept {
  // Reserve the record slots first so that a failure cannot leave a mapping
  // nobody will unmap, nor a stack nobody can put back.
  try {
    slabs_.reserve(slabs_.size() + 1);
  } catch (const std::bad_alloc&) {
    return false;
  }
  std::size_t n = std::min(std::max<std::size_t>(carved_, 1), kMaxSlabStacks);
  char* base = static_cast<char*>(map_stacks(n * stride_));
  if (base == nullptr && n > 1) {  // short of address space: one stack may still fit
    n = 1;
    base = static_cast<char*>(map_stacks(stride_));
  }
  if (base == nullptr) return false;
  slabs_.push_back({base, n * stride_});
  next_ = base;
  left_ = n;
  return true;
}

boost::context::stack_context StackPool::allocate() noexcept {
  boost::context::stack_context sctx;
  sctx.size = stack_size_;
  sctx.sp = nullptr;
  std::vector<void*>& from = !warm_.empty() ? warm_ : cold_;
  if (!from.empty()) {
    sctx.sp = from.back();
    from.pop_back();
    return sctx;
  }
  try {  // room to take the stack back later, whatever happens
    if (cold_.capacity() < carved_ + 1) cold_.reserve(std::max<std::size_t>(64, 2 * carved_));
  } catch (const std::bad_alloc&) {
    return sctx;
  }
  if (left_ == 0 && !new_slab()) return sctx;
  if (!install_guard(next_)) return sctx;
  --left_;
  ++carved_;
  next_ += stride_;
  sctx.sp = next_;
  return sctx;
}

void StackPool::deallocate(boost::context::stack_context& sctx) noexcept {
  void* sp = sctx.sp;
  sctx.sp = nullptr;
  if (sp == nullptr) return;
  if (warm_.size() < keep_warm_) {
    warm_.push_back(sp);  // capacity reserved by the constructor
    return;
  }
  // Guard markers survive MADV_DONTNEED; only the stack's own pages go.
  ::madvise(static_cast<char*>(sp) - stack_size_, stack_size_, MADV_DONTNEED);
  cold_.push_back(sp);  // capacity reserved when the stack was carved
}

}  // namespace spindle::fibers
