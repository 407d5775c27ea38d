//===- prefix_cache.h - Reuse of shared prompt prefixes ---------*- C++ -*-===//
//
// Which full KV pages hold which tokens, so that a sequence starting with the
// same tokens as an earlier one can share its pages instead of recomputing
// them. A cached page is named by a hash of (its parent page's hash, its
// token ids) and records its parent page, so the cached pages form a tree
// rooted at position 0; a lookup walks it from the root and compares the
// token ids of every page (a hash alone is never trusted). A page's KV depends
// on more than its ids when the prompt has images: every image token has the
// same id, so a page also carries what else its tokens were computed from
// (PageExtra: rotary positions off the text diagonal, image rows), hashed and
// compared exactly as the ids are.
//
// The KV cache counts references; this class knows which cached pages nobody
// holds (idle ones) and evicts the least recently idle leaf first when pages
// are needed. A page is evicted only after its cached children, so every
// cached page's ancestors are cached.
//
// Hybrid models need the linear-attention state at the reuse point too: a
// checkpoint (the conv windows and recurrent states of every Gated DeltaNet
// layer after a page's last token) is a slot of a bounded pool, attached to
// the page it follows. When the pool is full the least recently used
// checkpoint gives its slot up. The Engine copies the states; this class only
// does the bookkeeping.
//
//===----------------------------------------------------------------------===//
#ifndef QWEN_RT_PREFIX_CACHE_H
#define QWEN_RT_PREFIX_CACHE_H

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

namespace qwen::rt {

/// Counters for reports and /metrics.
struct PrefixCacheStats {
  int64_t lookups = 0;       ///< prompts looked up
  int64_t hits = 0;          ///< of which reused at least one page
  int64_t lookupTokens = 0;  ///< prompt tokens looked up
  int64_t reusedTokens = 0;  ///< prompt tokens not recomputed thanks to the cache
  int64_t cachedPages = 0;   ///< pages in the cache now (held or idle)
  int64_t idlePages = 0;     ///< cached pages no sequence holds (count as free)
  int64_t evictedPages = 0;  ///< since the start
  int64_t checkpoints = 0;   ///< checkpoint slots in use now
  int64_t checkpointSlots = 0;
  int64_t checkpointsTaken = 0; ///< since the start
  double hitRate() const { return lookupTokens ? double(reusedTokens) / double(lookupTokens) : 0.0; }
};

/// The inputs besides the ids that a page's KV was computed from, as words:
/// for each token k of the page whose rotary positions (t, h, w) are not
/// (i, i, i) at its index i, the words k, t, h, w; for each token with an
/// image row, k | 0x80000000 and the row's floats as bits. Empty for text.
using PageExtra = std::vector<uint32_t>;

/// What a sequence's KV was computed from besides its ids (TokenInputs of a
/// prompt chunk, or of what a sequence holds): each token's rotary
/// positions, for models with multimodal RoPE, and its image rows.
struct TokenInputs {
  std::vector<int32_t> positions;   ///< t, h, w per token; empty: each at its index
  std::vector<int64_t> imageTokens; ///< ascending indices of the tokens with an image row
  std::vector<float> imageRows;     ///< `hidden` floats per entry of imageTokens
  int64_t hidden = 0;

  void clear();
  /// Keeps the inputs of the first `tokens` tokens.
  void truncate(int64_t tokens);
  /// The largest rotary position of the first `tokens` tokens (-1 when none).
  int64_t maxPosition(int64_t tokens) const;
  /// The PageExtra of tokens [begin, begin + count).
  PageExtra pageExtra(int64_t begin, int64_t count) const;
};

class PrefixCache {
public:
  PrefixCache(int64_t pageSize, int64_t numPages, int numCheckpoints);

  int64_t pageSize() const { return PageSize; }
  int numCheckpointSlots() const { return int(CheckpointPages.size()); }

  /// The longest chain of cached pages holding tokens[0, numPages * pageSize)
  /// page by page, root first; `checkpointed` is how many of them end with
  /// the deepest page that has a checkpoint (0 if none).
  struct Match {
    std::vector<int32_t> pages;
    size_t checkpointed = 0;
  };
  /// `extras`: each page's PageExtra (null: text, all empty).
  Match lookup(const int32_t *tokens, int64_t numPages, const std::vector<PageExtra> *extras = nullptr) const;

  /// Names `page`, holding `tokens` (pageSize of them) after the cached page
  /// `parent` (-1 for the first page of a sequence). Returns the cached page
  /// for that content: `page` itself when it is new, an identical page cached
  /// earlier, or -1 when the content cannot be cached (a hash collision).
  /// The caller retains a returned `page` in the KV cache.
  int32_t insert(int32_t page, int32_t parent, const int32_t *tokens, PageExtra extra = {});
  bool cached(int32_t page) const { return Nodes.at(size_t(page)).cached; }

  /// A cached page nobody holds any more: it may be evicted.
  void markIdle(int32_t page);
  /// An idle page held again (by a hit).
  void markHeld(int32_t page);
  int64_t idlePages() const { return IdleCount; }
  /// Removes the least recently idle leaf from the cache and returns its page
  /// (with its checkpoint, if any, dropped), or -1 when no page is idle. The
  /// caller gives the page back to the KV cache's free list.
  int32_t evict();

  /// The checkpoint slot attached to `page`, -1 if none.
  int checkpointOf(int32_t page) const { return Nodes.at(size_t(page)).checkpoint; }
  /// Attaches a checkpoint slot to cached `page` (which must have none): a
  /// free slot, else the least recently used one taken from its page.
  /// Returns -1 when the pool has no slots.
  int addCheckpoint(int32_t page);
  void dropCheckpoint(int32_t page);
  /// A lookup restored the checkpoint of `page`.
  void useCheckpoint(int32_t page);
  /// Whether the checkpoint of `page` was restored since it was taken.
  bool checkpointUsed(int32_t page) const;

  /// Lookups and hits: the Engine counts them here.
  void countLookup(int64_t tokens, int64_t reused);
  PrefixCacheStats stats() const;

private:
  struct Node {
    bool cached = false, idle = false;
    int32_t parent = -1;
    int32_t children = 0; ///< cached pages whose parent this is
    int checkpoint = -1;
    uint64_t hash = 0;
    uint64_t idleSince = 0;
    std::vector<int32_t> tokens;
    PageExtra extra;
    bool holds(int32_t parentPage, const int32_t *ids, const PageExtra &inputs) const {
      return parent == parentPage && std::equal(tokens.begin(), tokens.end(), ids) && extra == inputs;
    }
  };
  static uint64_t hashPage(uint64_t parentHash, const int32_t *tokens, int64_t count, const PageExtra &extra);
  void updateEvictable(int32_t page);

  int64_t PageSize;
  std::vector<Node> Nodes; ///< by page id
  std::unordered_map<uint64_t, int32_t> ByHash;
  std::set<std::pair<uint64_t, int32_t>> Evictable; ///< idle leaves by (idleSince, page)
  int64_t IdleCount = 0, CachedCount = 0;
  uint64_t Clock = 0;
  std::vector<int32_t> CheckpointPages; ///< by slot: the page it follows, -1 when free
  std::vector<uint64_t> CheckpointUse;  ///< by slot: Clock at the last take or restore
  std::vector<bool> CheckpointRestored;
  PrefixCacheStats Counters;
};

} // namespace qwen::rt

#endif // QWEN_RT_PREFIX_CACHE_H
