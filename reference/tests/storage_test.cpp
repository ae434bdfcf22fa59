#include <gtest/gtest.h>

#include <cstring>

#include "stagekit/core/error.h"
#include "stagekit/core/storage.h"

namespace stagekit {
namespace {

TEST(Storage, SharingIsIdentityNotAddress) {
  Storage a = Storage::allocate(32);
  Storage b = a;
  Storage c = Storage::allocate(32);
  EXPECT_TRUE(a.is_alias_of(b));
  EXPECT_FALSE(a.is_alias_of(c));
  EXPECT_EQ(a.use_count(), 2);
  EXPECT_EQ(a.identity(), b.identity());
}

TEST(Storage, ReleaseObserversRunOnceWhenTheLastHandleDies) {
  int fired = 0;
  int removed_fired = 0;
  {
    Storage a = Storage::allocate(16);
    Storage b = a;
    a.add_release_observer([&] { ++fired; });
    const auto id = a.add_release_observer([&] { ++removed_fired; });
    a.remove_release_observer(id);
    a = Storage();
    EXPECT_EQ(fired, 0);
  }
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(removed_fired, 0);
}

TEST(Storage, WeakReferencesExpire) {
  WeakStorage weak;
  {
    Storage a = Storage::allocate(8);
    weak = a.weak();
    EXPECT_TRUE(weak.lock().is_alias_of(a));
  }
  EXPECT_TRUE(weak.expired());
  EXPECT_FALSE(weak.lock().defined());
}

TEST(Storage, ResizeKeepsThePrefixAndIdentity) {
  Storage s = Storage::allocate(8);
  std::memcpy(s.data(), "abcdefgh", 8);
  const void* id = s.identity();
  s.resize(3 << 20);  // moves to the mmap-backed path
  EXPECT_EQ(s.nbytes(), 3U << 20);
  EXPECT_EQ(std::memcmp(s.data(), "abcdefgh", 8), 0);
  s.resize(4);
  EXPECT_EQ(std::memcmp(s.data(), "abcd", 4), 0);
  EXPECT_EQ(s.identity(), id);
  Storage pinned = Storage::allocate(8, Device::cpu(), MemoryKind::shared);
  EXPECT_THROW(pinned.resize(16), InvalidArgument);
}

TEST(Storage, CopyBytesChecksBounds) {
  Storage a = Storage::allocate(8);
  Storage b = Storage::allocate(8);
  std::memcpy(a.data(), "01234567", 8);
  copy_bytes(b, 2, a, 4, 4);
  EXPECT_EQ(std::memcmp(static_cast<char*>(b.data()) + 2, "4567", 4), 0);
  EXPECT_THROW(copy_bytes(b, 6, a, 0, 4), InvalidArgument);
}

}  // namespace
}  // namespace stagekit
