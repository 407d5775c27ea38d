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
  RefCounts.assign(size_t(numPages), 0);
  Retained.assign(size_t(numPages), false);
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
    RefCounts[size_t(list.back())] = 1;
    FreePages.pop_back();
  }
}

void KVCache::dropReference(int32_t page, std::vector<int32_t> *idle) {
  if (--RefCounts[size_t(page)] > 0)
    return;
  if (Retained[size_t(page)])
    idle->push_back(page);
  else
    FreePages.push_back(page);
}

std::vector<int32_t> KVCache::release(int slot) {
  std::vector<int32_t> &list = SlotPages.at(size_t(slot));
  std::vector<int32_t> idle;
  // Push back in reverse so the lowest ids come out first again.
  for (auto it = list.rbegin(); it != list.rend(); ++it)
    dropReference(*it, &idle);
  list.clear();
  std::reverse(idle.begin(), idle.end());
  return idle;
}

void KVCache::share(int slot, int32_t page) {
  if (page < 0 || page >= NumPages || (RefCounts[size_t(page)] == 0 && !Retained[size_t(page)]))
    throw Error("KV page " + std::to_string(page) + " cannot be shared: nobody holds it");
  SlotPages.at(size_t(slot)).push_back(page);
  ++RefCounts[size_t(page)];
}

void KVCache::replace(int slot, size_t index, int32_t page) {
  std::vector<int32_t> &list = SlotPages.at(size_t(slot));
  if (index >= list.size() || !Retained.at(size_t(page)))
    throw Error("KV page " + std::to_string(page) + " cannot replace page " + std::to_string(index) + " of slot " +
                std::to_string(slot));
  int32_t old = list[index];
  list[index] = page;
  ++RefCounts[size_t(page)];
  std::vector<int32_t> idle;
  dropReference(old, &idle); // `old` is not retained: never idle
}

void KVCache::retain(int32_t page) { Retained.at(size_t(page)) = true; }

void KVCache::unretain(int32_t page) {
  if (!Retained.at(size_t(page)))
    return;
  Retained[size_t(page)] = false;
  if (RefCounts[size_t(page)] == 0)
    FreePages.push_back(page);
}

} // namespace qwen::rt
