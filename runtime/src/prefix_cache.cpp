//===- prefix_cache.cpp - Reuse of shared prompt prefixes -----------------===//

#include "qwen_rt/prefix_cache.h"

#include "qwen_rt/error.h"

#include <algorithm>
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

PrefixCache::PrefixCache(int64_t pageSize, int64_t numPages, int numCheckpoints)
    : PageSize(pageSize), Nodes(size_t(numPages)), CheckpointPages(size_t(std::max(numCheckpoints, 0)), -1),
      CheckpointUse(CheckpointPages.size(), 0), CheckpointRestored(CheckpointPages.size(), false) {
  if (pageSize <= 0)
    throw Error("the prefix cache needs a positive page size, got " + std::to_string(pageSize));
}

uint64_t PrefixCache::hashPage(uint64_t parentHash, const int32_t *tokens, int64_t count) {
  uint64_t h = mix(parentHash, uint64_t(count));
  for (int64_t i = 0; i < count; ++i)
    h = mix(h, uint32_t(tokens[i]));
  return h;
}

PrefixCache::Match PrefixCache::lookup(const int32_t *tokens, int64_t numPages) const {
  Match m;
  uint64_t h = kRootHash;
  int32_t parent = -1;
  for (int64_t k = 0; k < numPages; ++k) {
    const int32_t *page = tokens + k * PageSize;
    h = hashPage(h, page, PageSize);
    auto it = ByHash.find(h);
    if (it == ByHash.end())
      break;
    const Node &n = Nodes[size_t(it->second)];
    if (n.parent != parent || !std::equal(n.tokens.begin(), n.tokens.end(), page))
      break; // a hash collision: not our tokens
    parent = it->second;
    m.pages.push_back(parent);
    if (n.checkpoint >= 0)
      m.checkpointed = m.pages.size();
  }
  return m;
}

int32_t PrefixCache::insert(int32_t page, int32_t parent, const int32_t *tokens) {
  Node &n = Nodes.at(size_t(page));
  if (n.cached)
    return page;
  if (parent >= 0 && !Nodes.at(size_t(parent)).cached)
    return -1;
  uint64_t h = hashPage(parent >= 0 ? Nodes[size_t(parent)].hash : kRootHash, tokens, PageSize);
  if (auto it = ByHash.find(h); it != ByHash.end()) {
    const Node &other = Nodes[size_t(it->second)];
    bool same = other.parent == parent && std::equal(other.tokens.begin(), other.tokens.end(), tokens);
    return same ? it->second : -1;
  }
  n.cached = true;
  n.idle = false;
  n.parent = parent;
  n.children = 0;
  n.checkpoint = -1;
  n.hash = h;
  n.tokens.assign(tokens, tokens + PageSize);
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
