//===- image_cache.cpp - Images seen before, by their encoded bytes -------===//

#include "qwen_rt/image_cache.h"

#include <algorithm>

namespace qwen::rt {

namespace {
/// FNV-1a over the bytes: it only finds candidates, which are compared.
uint64_t hashBytes(const std::vector<uint8_t> &bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : bytes)
    h = (h ^ b) * 0x100000001b3ull;
  return h;
}
} // namespace

uint64_t ImageCache::Entry::size() const {
  return encoded->size() + (pixels ? pixels->data.size() * sizeof(float) : 0) +
         (rows ? rows->size() * sizeof(float) : 0);
}

ImageCache::Entries::iterator ImageCache::find(const Bytes &encoded) {
  auto [first, last] = ByHash.equal_range(hashBytes(*encoded));
  for (auto it = first; it != last; ++it)
    if (*it->second->encoded == *encoded) {
      Lru.splice(Lru.begin(), Lru, it->second);
      return it->second;
    }
  return Lru.end();
}

ImageCache::Entries::iterator ImageCache::findOrAdd(const Bytes &encoded) {
  if (auto it = find(encoded); it != Lru.end())
    return it;
  Lru.push_front(Entry{encoded, std::nullopt, std::nullopt});
  ByHash.emplace(hashBytes(*encoded), Lru.begin());
  Size += encoded->size();
  return Lru.begin();
}

void ImageCache::remove(Entries::iterator entry) {
  auto [first, last] = ByHash.equal_range(hashBytes(*entry->encoded));
  for (auto it = first; it != last; ++it)
    if (it->second == entry) {
      ByHash.erase(it);
      break;
    }
  Size -= entry->size();
  Lru.erase(entry);
}

void ImageCache::keep(Entries::iterator entry) {
  // An image larger than the whole budget would only flush the others.
  if (entry->size() > Budget) {
    remove(entry);
    return;
  }
  while (Size > Budget)
    remove(std::prev(Lru.end()));
}

std::optional<PixelValues> ImageCache::pixels(const Bytes &encoded) {
  std::lock_guard<std::mutex> lock(Mu);
  ++Counters.pixelLookups;
  auto it = find(encoded);
  if (it == Lru.end() || !it->pixels)
    return std::nullopt;
  ++Counters.pixelHits;
  return it->pixels;
}

void ImageCache::storePixels(const Bytes &encoded, const PixelValues &pixels) {
  std::lock_guard<std::mutex> lock(Mu);
  Entries::iterator e = findOrAdd(encoded);
  Size -= e->size();
  e->pixels = pixels;
  Size += e->size();
  keep(e);
}

std::optional<std::vector<float>> ImageCache::rows(const Bytes &encoded) {
  std::lock_guard<std::mutex> lock(Mu);
  ++Counters.rowLookups;
  auto it = find(encoded);
  if (it == Lru.end() || !it->rows)
    return std::nullopt;
  ++Counters.rowHits;
  return it->rows;
}

void ImageCache::storeRows(const Bytes &encoded, const std::vector<float> &rows) {
  std::lock_guard<std::mutex> lock(Mu);
  Entries::iterator e = findOrAdd(encoded);
  Size -= e->size();
  e->rows = rows;
  Size += e->size();
  keep(e);
}

ImageCacheStats ImageCache::stats() const {
  std::lock_guard<std::mutex> lock(Mu);
  ImageCacheStats s = Counters;
  s.images = int64_t(Lru.size());
  s.bytes = Size;
  return s;
}

} // namespace qwen::rt
