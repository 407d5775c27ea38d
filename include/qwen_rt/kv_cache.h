//===- kv_cache.h - Paged key/value cache -----------------------*- C++ -*-===//
//
// The two arrays `keys` and `values`, each laid out
// [num_pages][num_layers][page_size][num_kv_heads][head_dim] in the manifest's
// kv_cache.dtype, and the page allocator: a free list of page ids, and per
// sequence slot the list of its pages (position p lives in page
// pages[p / page_size], slot p % page_size). The kernels read and write the
// arrays; this class only hands out and takes back pages.
//
// Pages are reference counted: the prefix cache lets several sequences share
// the full pages of a common prefix, and it may retain a page that no
// sequence holds any more (an idle page) until its memory is needed.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_KV_CACHE_H
#define QWEN_RT_KV_CACHE_H

#include "qwen_rt/artifact.h"
#include "qwen_rt/weights.h"

#include <cstdint>
#include <vector>

namespace qwen::rt {

class KVCache {
public:
  /// numSlots: how many sequences can hold pages at once. `allocateArrays`
  /// false keeps only the allocator (tests).
  KVCache(const KVCacheSpec &spec, int64_t numPages, int numSlots, bool allocateArrays = true);

  const KVCacheSpec &spec() const { return Spec; }
  int64_t pageSize() const { return Spec.pageSize; }
  int64_t numPages() const { return NumPages; }
  int64_t numFreePages() const { return int64_t(FreePages.size()); }
  /// Bytes of one page, keys and values together.
  uint64_t bytesPerPage() const { return 2 * Spec.bytesPerPageOneArray(); }
  uint64_t totalBytes() const { return bytesPerPage() * uint64_t(NumPages); }

  void *keys() const { return Keys.data(); }
  void *values() const { return Values.data(); }

  /// Pages needed to hold `length` positions.
  int64_t pagesFor(int64_t length) const { return (length + Spec.pageSize - 1) / Spec.pageSize; }
  /// Extra pages `slot` needs to hold `length` positions (0 if it has them).
  int64_t extraPagesFor(int slot, int64_t length) const;
  /// Makes `slot` hold at least `length` positions, taking pages from the free
  /// list. Throws Error (and takes nothing) when there are not enough free pages.
  void reserve(int slot, int64_t length);
  /// Drops `slot`'s references to its pages. A page nobody references goes
  /// back to the free list unless it is retained; those (idle) pages are
  /// returned, in position order.
  std::vector<int32_t> release(int slot);
  /// The page ids of `slot`, in position order.
  const std::vector<int32_t> &pages(int slot) const { return SlotPages.at(size_t(slot)); }

  /// Appends `page`, which another slot holds or the cache retains, to the
  /// pages of `slot`.
  void share(int slot, int32_t page);
  /// Makes `slot` hold `page` (retained) at `index` instead of its own page
  /// there, which goes back to the free list if nobody else holds it.
  void replace(int slot, size_t index, int32_t page);
  int32_t refCount(int32_t page) const { return RefCounts.at(size_t(page)); }
  /// Keeps `page` out of the free list while nobody references it.
  void retain(int32_t page);
  bool retained(int32_t page) const { return Retained.at(size_t(page)); }
  /// Ends retain(page): an idle page goes back to the free list.
  void unretain(int32_t page);

private:
  void dropReference(int32_t page, std::vector<int32_t> *idle);

  KVCacheSpec Spec;
  int64_t NumPages;
  HostBuffer Keys, Values;
  std::vector<int32_t> FreePages; ///< a stack; the lowest ids are handed out first
  std::vector<std::vector<int32_t>> SlotPages;
  std::vector<int32_t> RefCounts; ///< by page: slots holding it
  std::vector<bool> Retained;     ///< by page: kept by the prefix cache
};

} // namespace qwen::rt

#endif // QWEN_RT_KV_CACHE_H
