// Internal: the stager's cache "source storage -> staged CPU buffer", keyed by storage identity.
// An entry is removed automatically when its source storage dies (a release observer on the
// source), and explicitly by remove() or clear(). Staged buffers are destroyed outside the lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "stagekit/core/storage.h"
#include "stagekit/stage/state_dict_stager.h"

namespace stagekit::detail {

class StorageCache {
 public:
  struct Entry {
    WeakStorage source;
    Storage staged;
    ReleaseObserverId observer = 0;
    // The stage that last scheduled a copy into `staged`: within one stage the first tensor that
    // reaches a storage claims its copy, from any thread (through std::atomic_ref; entries live in
    // the map's slots, next to their key, so a lookup touches one cache line).
    mutable std::uint64_t claimed = 0;
  };

  StorageCache();
  ~StorageCache();
  StorageCache(const StorageCache&) = delete;
  StorageCache& operator=(const StorageCache&) = delete;

  // Lookups for one stage, under one lock. While a Reader lives, a source storage of this cache
  // dying on another thread waits; the holder must not insert, remove or clear. find() and claim()
  // may be called from several threads at once.
  class Reader {
   public:
    [[nodiscard]] const Entry* find(const Storage& source) const;
    // True for the first caller of this stage to claim `entry`.
    [[nodiscard]] bool claim(const Entry& entry) const {
      return std::atomic_ref<std::uint64_t>(entry.claimed).exchange(generation_, std::memory_order_relaxed) !=
             generation_;
    }

   private:
    friend class StorageCache;
    explicit Reader(const StorageCache& cache);
    const StorageCache& cache_;
    std::unique_lock<std::mutex> lock_;
    std::uint64_t generation_;
  };
  [[nodiscard]] Reader reader() const { return Reader(*this); }

  // Caches `staged` for `source`, replacing any previous entry.
  void insert(const Storage& source, Storage staged);
  // Removes the entry of `source` if it still maps to `staged`.
  void remove(const Storage& source, const Storage& staged);
  void clear();
  [[nodiscard]] StagerStats stats() const;

 private:
  struct State {
    mutable std::mutex mutex;
    absl::flat_hash_map<const void*, Entry> entries;
    std::atomic<std::uint64_t> generation{0};
  };
  std::shared_ptr<State> state_;
};

}  // namespace stagekit::detail
