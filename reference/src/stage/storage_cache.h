// Internal: the stager's cache "source storage -> staged CPU buffer", keyed by storage identity.
// An entry is removed automatically when its source storage dies (a release observer on the
// source), and explicitly by remove() or clear(). Staged buffers are destroyed outside the lock.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "stagekit/core/storage.h"
#include "stagekit/stage/state_dict_stager.h"

namespace stagekit::detail {

class StorageCache {
 public:
  StorageCache();
  ~StorageCache();
  StorageCache(const StorageCache&) = delete;
  StorageCache& operator=(const StorageCache&) = delete;

  // The cached buffer of `source`, or an undefined Storage.
  [[nodiscard]] Storage find(const Storage& source) const;

  // Lookups under one lock, for a whole traversal. While a Reader lives, a source storage of this
  // cache dying on another thread waits; the holder must not insert, remove or clear.
  class Reader {
   public:
    [[nodiscard]] const Storage* find(const Storage& source) const;

   private:
    friend class StorageCache;
    explicit Reader(const StorageCache& cache) : cache_(cache), lock_(cache.state_->mutex) {}
    const StorageCache& cache_;
    std::unique_lock<std::mutex> lock_;
  };
  [[nodiscard]] Reader reader() const { return Reader(*this); }
  // Caches `staged` for `source`, replacing any previous entry.
  void insert(const Storage& source, Storage staged);
  // Removes the entry of `source` if it still maps to `staged`.
  void remove(const Storage& source, const Storage& staged);
  void clear();
  [[nodiscard]] StagerStats stats() const;

 private:
  struct Entry {
    WeakStorage source;
    Storage staged;
    ReleaseObserverId observer = 0;
  };
  struct State {
    mutable std::mutex mutex;
    absl::flat_hash_map<const void*, Entry> entries;
  };
  std::shared_ptr<State> state_;
};

}  // namespace stagekit::detail
