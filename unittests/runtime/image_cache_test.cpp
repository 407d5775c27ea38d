//===- image_cache_test.cpp - Images seen before ---------------------------===//

#include "qwen_rt/image_cache.h"

#include <gtest/gtest.h>

using namespace qwen::rt;

namespace {
ImageCache::Bytes bytes(std::vector<uint8_t> b) { return std::make_shared<const std::vector<uint8_t>>(std::move(b)); }

PixelValues pixels(float value, int64_t count) {
  PixelValues p;
  p.gridThw = {1, 2, 2};
  p.rows = 4;
  p.rowSize = count / 4;
  p.data.assign(size_t(count), value);
  return p;
}
} // namespace

TEST(ImageCacheTest, FindsAnImageByItsBytesComparedNotByItsHash) {
  ImageCache cache(1 << 20);
  cache.storePixels(bytes({1, 2, 3}), pixels(0.5f, 8));
  cache.storeRows(bytes({1, 2, 3}), {1.f, 2.f});
  // Equal bytes in another buffer find the entry; other bytes do not.
  ASSERT_TRUE(cache.pixels(bytes({1, 2, 3})).has_value());
  EXPECT_EQ(cache.pixels(bytes({1, 2, 3}))->data, pixels(0.5f, 8).data);
  EXPECT_EQ(*cache.rows(bytes({1, 2, 3})), (std::vector<float>{1.f, 2.f}));
  EXPECT_FALSE(cache.pixels(bytes({1, 2, 4})).has_value());
  EXPECT_FALSE(cache.rows(bytes({3, 2, 1})).has_value());
  ImageCacheStats s = cache.stats();
  EXPECT_EQ(s.images, 1);
  EXPECT_EQ(s.bytes, 3u + 8 * sizeof(float) + 2 * sizeof(float));
  EXPECT_EQ(s.pixelLookups, 3);
  EXPECT_EQ(s.pixelHits, 2);
  EXPECT_EQ(s.rowLookups, 2);
  EXPECT_EQ(s.rowHits, 1);
}

TEST(ImageCacheTest, TheLeastRecentlyUsedImagesLeaveBeyondTheBudget) {
  // Each entry: 1 byte + 16 floats = 65 bytes; the budget holds two.
  ImageCache cache(140);
  cache.storePixels(bytes({1}), pixels(1.f, 16));
  cache.storePixels(bytes({2}), pixels(2.f, 16));
  ASSERT_TRUE(cache.pixels(bytes({1})).has_value()); // 1 is now the most recent
  cache.storePixels(bytes({3}), pixels(3.f, 16));
  EXPECT_TRUE(cache.pixels(bytes({1})).has_value());
  EXPECT_FALSE(cache.pixels(bytes({2})).has_value());
  EXPECT_TRUE(cache.pixels(bytes({3})).has_value());
  EXPECT_EQ(cache.stats().images, 2);
  EXPECT_EQ(cache.stats().bytes, 130u);
  // An image larger than the budget is not kept, and flushes no other one.
  cache.storePixels(bytes({4}), pixels(4.f, 64));
  EXPECT_FALSE(cache.pixels(bytes({4})).has_value());
  EXPECT_TRUE(cache.pixels(bytes({1})).has_value());
  EXPECT_TRUE(cache.pixels(bytes({3})).has_value());
  // A zero budget keeps nothing.
  ImageCache none(0);
  none.storePixels(bytes({1}), pixels(1.f, 16));
  EXPECT_FALSE(none.pixels(bytes({1})).has_value());
}
