//===- prefix_cache_test.cpp - Shared pages and the prefix tree -----------===//

#include "qwen_rt/error.h"
#include "qwen_rt/kv_cache.h"
#include "qwen_rt/prefix_cache.h"

#include <gtest/gtest.h>

#include <vector>

using namespace qwen::rt;

namespace {

constexpr int64_t kPage = 4;

KVCacheSpec smallSpec() {
  KVCacheSpec s;
  s.numLayers = 1;
  s.numKvHeads = 1;
  s.headDim = 4;
  s.pageSize = kPage;
  s.dtype = DType::F32;
  return s;
}

/// Caches the pages of `slot` holding `tokens` the way the Engine does.
void cachePages(KVCache &kv, PrefixCache &cache, int slot, const std::vector<int32_t> &tokens) {
  const std::vector<int32_t> &pages = kv.pages(slot);
  for (size_t k = 0; k * kPage + kPage <= tokens.size(); ++k) {
    int32_t page = cache.insert(pages[k], k ? pages[k - 1] : -1, tokens.data() + k * kPage);
    ASSERT_EQ(page, pages[k]);
    kv.retain(page);
  }
}

TEST(KVCacheTest, SharedPagesAreReferenceCounted) {
  KVCache kv(smallSpec(), 4, 2, /*allocateArrays=*/false);
  kv.reserve(0, 8);
  int32_t first = kv.pages(0)[0];
  kv.retain(first);
  kv.share(1, first);
  EXPECT_EQ(kv.refCount(first), 2);
  EXPECT_TRUE(kv.release(0).empty()); // slot 1 still holds the first page
  EXPECT_EQ(kv.numFreePages(), 3);
  EXPECT_EQ(kv.release(1), std::vector<int32_t>{first}); // retained: idle, not free
  EXPECT_EQ(kv.numFreePages(), 3);
  kv.unretain(first);
  EXPECT_EQ(kv.numFreePages(), 4);
  // Only held or retained pages can be shared.
  EXPECT_THROW(kv.share(0, first), Error);
}

TEST(PrefixCacheTest, LookupWalksFromTheRootAndComparesTokens) {
  KVCache kv(smallSpec(), 8, 2, /*allocateArrays=*/false);
  PrefixCache cache(kPage, 8, 0);
  std::vector<int32_t> a = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  kv.reserve(0, int64_t(a.size()));
  cachePages(kv, cache, 0, a);
  EXPECT_EQ(cache.lookup(a.data(), 2).pages, (std::vector<int32_t>{kv.pages(0)[0], kv.pages(0)[1]}));
  // The same second page after a different first one is another prefix.
  std::vector<int32_t> b = {1, 2, 3, 0, 5, 6, 7, 8};
  EXPECT_TRUE(cache.lookup(b.data(), 2).pages.empty());
  std::vector<int32_t> c = {1, 2, 3, 4, 5, 6, 7, 0};
  EXPECT_EQ(cache.lookup(c.data(), 2).pages.size(), 1u);
  // An identical page computed by another sequence is found, not duplicated.
  kv.reserve(1, 4);
  EXPECT_EQ(cache.insert(kv.pages(1)[0], -1, a.data()), kv.pages(0)[0]);
}

TEST(PrefixCacheTest, EvictsIdleLeavesLeastRecentlyIdleFirst) {
  KVCache kv(smallSpec(), 8, 2, /*allocateArrays=*/false);
  PrefixCache cache(kPage, 8, 0);
  std::vector<int32_t> a = {1, 2, 3, 4, 5, 6, 7, 8}, b = {1, 2, 3, 4, 9, 9, 9, 9};
  kv.reserve(0, 8);
  cachePages(kv, cache, 0, a);
  // b shares a's first page and adds its own second page.
  kv.share(1, kv.pages(0)[0]);
  kv.reserve(1, 8);
  cachePages(kv, cache, 1, b);
  std::vector<int32_t> pagesA = kv.pages(0), pagesB = kv.pages(1);
  for (int32_t p : kv.release(1))
    cache.markIdle(p);
  EXPECT_EQ(cache.idlePages(), 1); // the shared first page is still held by a
  for (int32_t p : kv.release(0))
    cache.markIdle(p);
  EXPECT_EQ(cache.idlePages(), 3);
  EXPECT_EQ(kv.numFreePages(), 5);
  // b's leaf went idle first; the root goes last, after both its children.
  EXPECT_EQ(cache.evict(), pagesB[1]);
  EXPECT_EQ(cache.evict(), pagesA[1]);
  EXPECT_EQ(cache.evict(), pagesA[0]);
  EXPECT_EQ(cache.evict(), -1);
  EXPECT_TRUE(cache.lookup(a.data(), 2).pages.empty());
}

TEST(PrefixCacheTest, CheckpointPoolIsBoundedAndLeastRecentlyUsedGoesFirst) {
  KVCache kv(smallSpec(), 8, 1, /*allocateArrays=*/false);
  PrefixCache cache(kPage, 8, 2);
  std::vector<int32_t> a = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  kv.reserve(0, 12);
  cachePages(kv, cache, 0, a);
  const std::vector<int32_t> pages = kv.pages(0);
  EXPECT_EQ(cache.addCheckpoint(pages[0]), 0);
  EXPECT_EQ(cache.addCheckpoint(pages[1]), 1);
  cache.useCheckpoint(pages[0]); // page 1's checkpoint is now the least recently used
  EXPECT_EQ(cache.addCheckpoint(pages[2]), 1);
  EXPECT_EQ(cache.checkpointOf(pages[1]), -1);
  EXPECT_TRUE(cache.checkpointUsed(pages[0]));
  PrefixCache::Match m = cache.lookup(a.data(), 3);
  EXPECT_EQ(m.pages.size(), 3u);
  EXPECT_EQ(m.checkpointed, 3u);
  EXPECT_EQ(cache.stats().checkpoints, 2);
  // An evicted page takes its checkpoint with it.
  for (int32_t p : kv.release(0))
    cache.markIdle(p);
  EXPECT_EQ(cache.evict(), pages[2]);
  EXPECT_EQ(cache.stats().checkpoints, 1);
}

} // namespace

namespace {
/// Two tokens at positions off the text diagonal from index 1, the second an
/// image token with a row of `value`s.
TokenInputs imageInputs(float value) {
  TokenInputs in;
  in.hidden = 2;
  in.positions = {0, 0, 0, 1, 1, 1, 2, 1, 1, 5, 6, 7};
  in.imageTokens = {3};
  in.imageRows = {value, -value};
  return in;
}
} // namespace

TEST(PrefixCacheTest, PageInputsNameWhatBesidesTheIdsTheKVWasComputedFrom) {
  TokenInputs text;
  text.positions = {0, 0, 0, 1, 1, 1};
  EXPECT_TRUE(text.pageExtra(0, 2).empty()); // text on the diagonal adds nothing
  TokenInputs in = imageInputs(0.5f);
  PageExtra extra = in.pageExtra(0, 4);
  // Token 2 off the diagonal (k, t, h, w); token 3 too, then its row's bits.
  ASSERT_EQ(extra.size(), 4u + 4u + 1u + 2u);
  EXPECT_EQ((PageExtra(extra.begin(), extra.begin() + 4)), (PageExtra{2, 2, 1, 1}));
  EXPECT_EQ(extra[8], 3u | 0x80000000u);
  EXPECT_NE(extra, imageInputs(0.25f).pageExtra(0, 4));
  EXPECT_EQ(in.maxPosition(4), 7);
  in.truncate(3);
  EXPECT_TRUE(in.imageTokens.empty());
  EXPECT_EQ(in.positions.size(), 9u);
  EXPECT_EQ(in.maxPosition(3), 2);
}

TEST(PrefixCacheTest, PagesWithTheSameIdsButOtherImageRowsAreNotShared) {
  KVCache kv(smallSpec(), 8, 2, /*allocateArrays=*/false);
  PrefixCache cache(kPage, 8, 0);
  const std::vector<int32_t> ids = {1, 2, 9, 9};
  kv.reserve(0, 4);
  const int32_t page = kv.pages(0)[0];
  ASSERT_EQ(cache.insert(page, -1, ids.data(), imageInputs(0.5f).pageExtra(0, 4)), page);
  kv.retain(page);
  std::vector<PageExtra> same = {imageInputs(0.5f).pageExtra(0, 4)}, other = {imageInputs(0.25f).pageExtra(0, 4)};
  EXPECT_EQ(cache.lookup(ids.data(), 1, &same).pages, std::vector<int32_t>{page});
  EXPECT_TRUE(cache.lookup(ids.data(), 1, &other).pages.empty());
  EXPECT_TRUE(cache.lookup(ids.data(), 1).pages.empty()); // the same ids as text
  // Another sequence's page with the other image stays its own.
  kv.reserve(1, 4);
  EXPECT_EQ(cache.insert(kv.pages(1)[0], -1, ids.data(), other[0]), kv.pages(1)[0]);
}
