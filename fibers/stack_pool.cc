#include "fibers/stack_pool.hh"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <new>

namespace spindle::fibers {

namespace {

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

}  // namespace

std::size_t StackPool::page_size() {
  static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

StackPool::StackPool(std::size_t stack_size)
    : stack_size_(round_up(stack_size < kMinStackSize ? kMinStackSize : stack_size, page_size())),
      map_size_(stack_size_ + page_size()) {}

StackPool::~StackPool() {
  for (void* base : mappings_) ::munmap(base, map_size_);
}

StackPool::FreeNode* StackPool::node_of(void* sp) {
  return reinterpret_cast<FreeNode*>(static_cast<char*>(sp) - sizeof(FreeNode));
}

boost::context::stack_context StackPool::allocate() noexcept {
  boost::context::stack_context sctx;
  sctx.size = stack_size_;
  if (free_ != nullptr) {
    FreeNode* node = free_;
    free_ = node->next;
    --pooled_;
    sctx.sp = reinterpret_cast<char*>(node) + sizeof(FreeNode);
    return sctx;
  }
  // Reserve the record slot first so that a failure cannot leave a mapping
  // nobody will unmap.
  try {
    mappings_.reserve(mappings_.size() + 1);
  } catch (const std::bad_alloc&) {
    sctx.sp = nullptr;
    return sctx;
  }
  // MAP_NORESERVE: a stack is mostly untouched address space; only the pages a
  // context really uses should count against memory.
  void* base = ::mmap(nullptr, map_size_, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) {
    sctx.sp = nullptr;
    return sctx;
  }
  if (::mprotect(base, page_size(), PROT_NONE) != 0) {
    ::munmap(base, map_size_);
    sctx.sp = nullptr;
    return sctx;
  }
  mappings_.push_back(base);
  sctx.sp = static_cast<char*>(base) + map_size_;
  return sctx;
}

void StackPool::deallocate(boost::context::stack_context& sctx) noexcept {
  FreeNode* node = node_of(sctx.sp);
  node->next = free_;
  free_ = node;
  ++pooled_;
  sctx.sp = nullptr;
}

}  // namespace spindle::fibers
