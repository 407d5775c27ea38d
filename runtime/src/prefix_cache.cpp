//===- prefix_cache.cpp - Reuse of shared prompt prefixes -----------------===//

#include "qwen_rt/prefix_cache.h"

#include "qwen_rt/error.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace qwen::rt {

namespace {
/// The root's "parent hash".
constexpr uint64_t kRootHash = 0x9e3779b97f4a7c15ull;

uint64_t mix(uint64_t h, uint64_t v) {
  // splitmix64 finalizer over the running hash and the next value.
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}
} // namespace

void TokenInputs::clear() {
  positions.clear();
  imageTokens.clear();
  imageRows.clear();
}

void TokenInputs::truncate(int64_t tokens) {
  if (!positions.empty())
    positions.resize(std::min(positions.size(), size_t(3 * tokens)));
  const size_t kept = size_t(std::lower_bound(imageTokens.begin(), imageTokens.end(), tokens) - imageTokens.begin());
  imageTokens.resize(kept);
  imageRows.resize(kept * size_t(hidden));
}

int64_t TokenInputs::maxPosition(int64_t tokens) const {
  if (positions.empty())
    return tokens - 1;
  int64_t m = -1;
  for (size_t i = 0; i < size_t(3 * tokens) && i < positions.size(); ++i)
    m = std::max<int64_t>(m, positions[i]);
  return m;
}

PageExtra TokenInputs::pageExtra(int64_t begin, int64_t count) const {
  PageExtra extra;
  auto image = std::lower_bound(imageTokens.begin(), imageTokens.end(), begin);
  for (int64_t i = begin; i < begin + count; ++i) {
    const uint32_t k = uint32_t(i - begin);
    if (size_t(3 * i + 2) < positions.size()) {
      const int32_t *p = &positions[size_t(3 * i)];
      if (p[0] != i || p[1] != i || p[2] != i)
        extra.insert(extra.end(), {k, uint32_t(p[0]), uint32_t(p[1]), uint32_t(p[2])});
    }
    if (image != imageTokens.end() && *image == i) {
      extra.push_back(k | 0x80000000u);
      const float *row = &imageRows[size_t(image - imageTokens.begin()) * size_t(hidden)];
      for (int64_t d = 0; d < hidden; ++d) {
        uint32_t bits;
        std::memcpy(&bits, row + d, sizeof bits);
        extra.push_back(bits);
      }
      ++image;
    }
  }
  return extra;
}

PrefixCache::PrefixCache(int64_t pageSize, int64_t numPages, int numCheckpoints)
    : PageSize(pageSize), Nodes(size_t(numPages)), CheckpointPages(size_t(std::max(numCheckpoints, 0)), -1),
      CheckpointUse(CheckpointPages.size(), 0), CheckpointRestored(CheckpointPages.size(), false) {
  if (pageSize <= 0)
    throw Error("the prefix cache needs a positive page size, got " + std::to_string(pageSize));
}

uint64_t PrefixCache::hashPage(uint64_t parentHash, const int32_t *tokens, int64_t count, const PageExtra &extra) {
  uint64_t h = mix(parentHash, uint64_t(count));
  for (int64_t i = 0; i < count; ++i)
    h = mix(h, uint32_t(tokens[i]));
  h = mix(h, extra.size());
  for (uint32_t word : extra)
    h = mix(h, word);
  return h;
}

PrefixCache::Match PrefixCache::lookup(const int32_t *tokens, int64_t numPages,
                                       const std::vector<PageExtra> *extras) const {
  if (extras && int64_t(extras->size()) < numPages)
    throw Error("PrefixCache::lookup: " + std::to_string(extras->size()) + " page inputs for " +
                std::to_string(numPages) + " pages");
  static const PageExtra kText;
  Match m;
  uint64_t h = kRootHash;
  int32_t parent = -1;
  for (int64_t k = 0; k < numPages; ++k) {
    const int32_t *page = tokens + k * PageSize;
    const PageExtra &extra = extras ? (*extras)[size_t(k)] : kText;
    h = hashPage(h, page, PageSize, extra);
    auto it = ByHash.find(h);
    if (it == ByHash.end())
      break;
    const Node &n = Nodes[size_t(it->second)];
    if (!n.holds(parent, page, extra))
      break; // a hash collision: not our tokens
    parent = it->second;
    m.pages.push_back(parent);
    if (n.checkpoint >= 0)
      m.checkpointed = m.pages.size();
  }
  return m;
}

int32_t PrefixCache::insert(int32_t page, int32_t parent, const int32_t *tokens, PageExtra extra) {
  Node &n = Nodes.at(size_t(page));
  if (n.cached)
    return page;
  if (parent >= 0 && !Nodes.at(size_t(parent)).cached)
    return -1;
  uint64_t h = hashPage(parent >= 0 ? Nodes[size_t(parent)].hash : kRootHash, tokens, PageSize, extra);
  if (auto it = ByHash.find(h); it != ByHash.end())
    return Nodes[size_t(it->second)].holds(parent, tokens, extra) ? it->second : -1;
  n.cached = true;
  n.idle = false;
  n.parent = parent;
  n.children = 0;
  n.checkpoint = -1;
  n.hash = h;
  n.tokens.assign(tokens, tokens + PageSize);
  n.extra = std::move(extra);
  ByHash.emplace(h, page);
  ++CachedCount;
  if (parent >= 0) {
    ++Nodes[size_t(parent)].children;
    updateEvictable(parent);
  }
  return page;
}

void PrefixCache::updateEvictable(int32_t page) {
  Node &n = Nodes[size_t(page)];
  auto key = std::make_pair(n.idleSince, page);
  if (n.cached && n.idle && n.children == 0)
    Evictable.insert(key);
  else
    Evictable.erase(key);
}

void PrefixCache::markIdle(int32_t page) {
  Node &n = Nodes.at(size_t(page));
  if (!n.cached || n.idle)
    return;
  n.idle = true;
  n.idleSince = ++Clock;
  ++IdleCount;
  updateEvictable(page);
}

void PrefixCache::markHeld(int32_t page) {
  Node &n = Nodes.at(size_t(page));
  if (!n.cached || !n.idle)
    return;
  Evictable.erase({n.idleSince, page});
  n.idle = false;
  --IdleCount;
}

int32_t PrefixCache::evict() {
  if (Evictable.empty())
    return -1;
  int32_t page = Evictable.begin()->second;
  Evictable.erase(Evictable.begin());
  Node &n = Nodes[size_t(page)];
  if (n.checkpoint >= 0)
    dropCheckpoint(page);
  ByHash.erase(n.hash);
  n.cached = n.idle = false;
  n.tokens.clear();
  n.extra.clear();
  --IdleCount;
  --CachedCount;
  ++Counters.evictedPages;
  if (n.parent >= 0) {
    --Nodes[size_t(n.parent)].children;
    updateEvictable(n.parent);
  }
  return page;
}

int PrefixCache::addCheckpoint(int32_t page) {
  Node &n = Nodes.at(size_t(page));
  if (!n.cached || n.checkpoint >= 0)
    throw Error("a checkpoint needs a cached page without one (page " + std::to_string(page) + ")");
  if (CheckpointPages.empty())
    return -1;
  auto slot = std::find(CheckpointPages.begin(), CheckpointPages.end(), -1);
  if (slot == CheckpointPages.end()) {
    size_t oldest = size_t(std::min_element(CheckpointUse.begin(), CheckpointUse.end()) - CheckpointUse.begin());
    dropCheckpoint(CheckpointPages[oldest]);
    slot = CheckpointPages.begin() + long(oldest);
  }
  size_t s = size_t(slot - CheckpointPages.begin());
  CheckpointPages[s] = page;
  CheckpointUse[s] = ++Clock;
  CheckpointRestored[s] = false;
  n.checkpoint = int(s);
  ++Counters.checkpointsTaken;
  return int(s);
}

void PrefixCache::dropCheckpoint(int32_t page) {
  Node &n = Nodes.at(size_t(page));
  if (n.checkpoint < 0)
    return;
  CheckpointPages[size_t(n.checkpoint)] = -1;
  CheckpointUse[size_t(n.checkpoint)] = 0;
  n.checkpoint = -1;
}

void PrefixCache::useCheckpoint(int32_t page) {
  int slot = Nodes.at(size_t(page)).checkpoint;
  if (slot < 0)
    return;
  CheckpointUse[size_t(slot)] = ++Clock;
  CheckpointRestored[size_t(slot)] = true;
}

bool PrefixCache::checkpointUsed(int32_t page) const {
  int slot = Nodes.at(size_t(page)).checkpoint;
  return slot >= 0 && CheckpointRestored[size_t(slot)];
}

void PrefixCache::countLookup(int64_t tokens, int64_t reused) {
  ++Counters.lookups;
  Counters.hits += reused > 0;
  Counters.lookupTokens += tokens;
  Counters.reusedTokens += reused;
}

PrefixCacheStats PrefixCache::stats() const {
  PrefixCacheStats s = Counters;
  s.cachedPages = CachedCount;
  s.idlePages = IdleCount;
  s.checkpointSlots = int64_t(CheckpointPages.size());
  s.checkpoints =
      int64_t(std::count_if(CheckpointPages.begin(), CheckpointPages.end(), [](int32_t p) { return p >= 0; }));
  return s;
}

} // namespace qwen::rt
