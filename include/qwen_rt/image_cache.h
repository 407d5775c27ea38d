//===- image_cache.h - Images seen before, by their encoded bytes -*- C++ -*-===//
//
// A chat sends its whole history with every turn, images included. The cache
// keeps what the engine made of an image the first time (its preprocessed
// pixels, and once the vision program ran, its merged-patch rows), found by
// the image's encoded bytes: a hash finds an entry, the bytes are compared,
// so another image never takes an entry's place. The least recently used
// images leave first when the entries pass the byte budget. Thread-safe: the
// server preprocesses on its HTTP threads and encodes on the engine thread.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_IMAGE_CACHE_H
#define QWEN_RT_IMAGE_CACHE_H

#include "qwen_rt/image.h"

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace qwen::rt {

/// Lookups and hits, for reports and /metrics.
struct ImageCacheStats {
  int64_t pixelLookups = 0, pixelHits = 0; ///< decoded and preprocessed images
  int64_t rowLookups = 0, rowHits = 0;     ///< vision program outputs
  int64_t images = 0;                      ///< entries now
  uint64_t bytes = 0;                      ///< their bytes now
};

class ImageCache {
public:
  using Bytes = std::shared_ptr<const std::vector<uint8_t>>;
  /// `budgetBytes`: what the entries may hold (encoded bytes, pixels, rows); 0 keeps nothing.
  explicit ImageCache(uint64_t budgetBytes) : Budget(budgetBytes) {}

  /// The pixels of the image `encoded` was decoded to, if cached.
  std::optional<PixelValues> pixels(const Bytes &encoded);
  void storePixels(const Bytes &encoded, const PixelValues &pixels);
  /// The vision program's rows for the image `encoded`, if cached.
  std::optional<std::vector<float>> rows(const Bytes &encoded);
  void storeRows(const Bytes &encoded, const std::vector<float> &rows);

  ImageCacheStats stats() const;

private:
  struct Entry {
    Bytes encoded;
    std::optional<PixelValues> pixels;
    std::optional<std::vector<float>> rows;
    uint64_t size() const;
  };
  using Entries = std::list<Entry>; ///< most recently used first
  Entries::iterator find(const Bytes &encoded); ///< end() if absent; else moved to the front
  Entries::iterator findOrAdd(const Bytes &encoded);
  void remove(Entries::iterator entry);
  /// Drops `entry` if it alone passes the budget, else the least recently used ones beyond it.
  void keep(Entries::iterator entry);

  uint64_t Budget, Size = 0;
  Entries Lru;
  std::unordered_multimap<uint64_t, Entries::iterator> ByHash;
  ImageCacheStats Counters;
  mutable std::mutex Mu;
};

} // namespace qwen::rt

#endif // QWEN_RT_IMAGE_CACHE_H
