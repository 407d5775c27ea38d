//===- kv_cache.cpp - Paged key/value cache -------------------------------===//

#include "qwen_rt/kv_cache.h"

#include "qwen_rt/error.h"

#include <algorithm>

namespace qwen::rt {

KVCache::KVCache(const KVCacheSpec &spec, int64_t numPages, int numSlots, bool allocateArrays)
    : Spec(spec), NumPages(numPages), SlotPages(size_t(std::max(numSlots, 0))) {
  if (numPages <= 0 || numPages > INT32_MAX)
    throw Error("the KV cache needs between 1 and 2^31-1 pages, got " + std::to_string(numPages));
  if (spec.pageSize <= 0)
    throw Error("the KV cache page size must be positive, got " + std::to_string(spec.pageSize));
  if (allocateArrays) {
    uint64_t bytes = spec.bytesPerPageOneArray() * uint64_t(numPages);
    Keys = HostBuffer(bytes, "the KV cache keys (" + std::to_string(numPages) + " pages)");
    Values = HostBuffer(bytes, "the KV cache values (" + std::to_string(numPages) + " pages)");
  }
  FreePages.resize(size_t(numPages));
  for (int64_t i = 0; i < numPages; ++i)
    FreePages[size_t(i)] = int32_t(numPages - 1 - i);
}

int64_t KVCache::extraPagesFor(int slot, int64_t length) const {
  return std::max<int64_t>(0, pagesFor(length) - int64_t(pages(slot).size()));
}

void KVCache::reserve(int slot, int64_t length) {
  std::vector<int32_t> &list = SlotPages.at(size_t(slot));
  int64_t extra = extraPagesFor(slot, length);
  if (extra > numFreePages())
    throw Error("out of KV cache pages: holding " + std::to_string(length) + " positions needs " +
                std::to_string(extra) + " more pages of " + std::to_string(Spec.pageSize) + " tokens, but only " +
                std::to_string(numFreePages()) + " of " + std::to_string(NumPages) +
                " are free; finish or release other sequences, or load with more pages");
  for (int64_t i = 0; i < extra; ++i) {
    list.push_back(FreePages.back());
    FreePages.pop_back();
  }
}

void KVCache::release(int slot) {
  std::vector<int32_t> &list = SlotPages.at(size_t(slot));
  // Push back in reverse so the lowest ids come out first again.
  for (auto it = list.rbegin(); it != list.rend(); ++it)
    FreePages.push_back(*it);
  list.clear();
}

} // namespace qwen::rt
