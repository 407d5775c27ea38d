//===- kv_cache_test.cpp - Page allocator of the KV cache -----------------===//

#include "qwen_rt/error.h"
#include "qwen_rt/kv_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

using namespace qwen::rt;

namespace {

KVCacheSpec smallSpec() {
  KVCacheSpec s;
  s.numLayers = 2;
  s.numKvHeads = 2;
  s.headDim = 8;
  s.pageSize = 4;
  s.dtype = DType::F32;
  return s;
}

std::string errorOf(const std::function<void()> &fn) {
  try {
    fn();
  } catch (const Error &e) {
    return e.what();
  }
  return "";
}

TEST(KVCacheTest, SizesFollowTheLayout) {
  KVCache kv(smallSpec(), 10, 3);
  // [num_pages][num_layers][page_size][num_kv_heads][head_dim] f32, keys and values.
  EXPECT_EQ(kv.bytesPerPage(), 2u * 2 * 4 * 2 * 8 * 4);
  EXPECT_EQ(kv.totalBytes(), 10u * kv.bytesPerPage());
  ASSERT_NE(kv.keys(), nullptr);
  ASSERT_NE(kv.values(), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(kv.keys()) % 64, 0u);
  // Zero-filled and writable over the whole extent.
  auto *k = static_cast<float *>(kv.keys());
  EXPECT_EQ(k[0], 0.0f);
  k[kv.totalBytes() / 2 / sizeof(float) - 1] = 1.0f;

  KVCacheSpec bf = smallSpec();
  bf.dtype = DType::BF16;
  EXPECT_EQ(KVCache(bf, 1, 1, false).bytesPerPage(), 2u * 2 * 4 * 2 * 8 * 2);
}

TEST(KVCacheTest, GrowsOnDemandAndReleases) {
  KVCache kv(smallSpec(), 6, 2, /*allocateArrays=*/false);
  EXPECT_EQ(kv.numFreePages(), 6);
  EXPECT_EQ(kv.pagesFor(0), 0);
  EXPECT_EQ(kv.pagesFor(1), 1);
  EXPECT_EQ(kv.pagesFor(4), 1);
  EXPECT_EQ(kv.pagesFor(5), 2);

  kv.reserve(0, 1);
  EXPECT_EQ(kv.pages(0), (std::vector<int32_t>{0}));
  kv.reserve(0, 4); // still fits the first page
  EXPECT_EQ(kv.pages(0).size(), 1u);
  kv.reserve(1, 9);
  EXPECT_EQ(kv.pages(1), (std::vector<int32_t>{1, 2, 3}));
  kv.reserve(0, 5);
  EXPECT_EQ(kv.pages(0), (std::vector<int32_t>{0, 4}));
  EXPECT_EQ(kv.numFreePages(), 1);
  EXPECT_EQ(kv.extraPagesFor(0, 12), 1);
  EXPECT_EQ(kv.extraPagesFor(0, 3), 0);

  kv.release(1);
  EXPECT_TRUE(kv.pages(1).empty());
  EXPECT_EQ(kv.numFreePages(), 4);
  // Freed pages are reused, lowest ids first.
  kv.reserve(1, 8);
  EXPECT_EQ(kv.pages(1), (std::vector<int32_t>{1, 2}));
}

TEST(KVCacheTest, OutOfPagesTakesNothing) {
  KVCache kv(smallSpec(), 3, 2, false);
  kv.reserve(0, 8);
  std::string msg = errorOf([&] { kv.reserve(1, 9); });
  EXPECT_NE(msg.find("out of KV cache pages"), std::string::npos) << msg;
  EXPECT_NE(msg.find("needs 3 more pages"), std::string::npos) << msg;
  EXPECT_NE(msg.find("only 1 of 3 are free"), std::string::npos) << msg;
  EXPECT_TRUE(kv.pages(1).empty());
  EXPECT_EQ(kv.numFreePages(), 1);
  kv.reserve(1, 4);
  EXPECT_EQ(kv.numFreePages(), 0);
}

TEST(KVCacheTest, NoPageIsHandedOutTwice) {
  KVCache kv(smallSpec(), 64, 8, false);
  std::vector<int64_t> lengths(8, 0);
  uint32_t state = 12345;
  for (int round = 0; round < 2000; ++round) {
    state = state * 1664525u + 1013904223u;
    int slot = int((state >> 8) % 8);
    if ((state >> 20) % 5 == 0) {
      kv.release(slot);
      lengths[size_t(slot)] = 0;
    } else {
      int64_t want = lengths[size_t(slot)] + int64_t((state >> 12) % 6);
      if (kv.extraPagesFor(slot, want) <= kv.numFreePages()) {
        kv.reserve(slot, want);
        lengths[size_t(slot)] = want;
      }
    }
    std::set<int32_t> used;
    int64_t count = 0;
    for (int s = 0; s < 8; ++s) {
      EXPECT_EQ(int64_t(kv.pages(s).size()), kv.pagesFor(lengths[size_t(s)]));
      for (int32_t p : kv.pages(s)) {
        EXPECT_TRUE(p >= 0 && p < 64);
        used.insert(p);
        ++count;
      }
    }
    ASSERT_EQ(int64_t(used.size()), count) << "a page is owned twice";
    ASSERT_EQ(count + kv.numFreePages(), 64);
  }
}

TEST(KVCacheTest, RejectsBadSizes) {
  EXPECT_THROW(KVCache(smallSpec(), 0, 1, false), Error);
  KVCacheSpec s = smallSpec();
  s.pageSize = 0;
  EXPECT_THROW(KVCache(s, 4, 1, false), Error);
}

} // namespace
