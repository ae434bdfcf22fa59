#include "storage_cache.h"

namespace stagekit::detail {

StorageCache::StorageCache() : state_(std::make_shared<State>()) {}

StorageCache::~StorageCache() { clear(); }

StorageCache::Reader::Reader(const StorageCache& cache)
    : cache_(cache), lock_(cache.state_->mutex), generation_(cache.state_->generation.fetch_add(1) + 1) {}

const StorageCache::Entry* StorageCache::Reader::find(const Storage& source) const {
  auto it = cache_.state_->entries.find(source.identity());
  return it == cache_.state_->entries.end() ? nullptr : &it->second;
}

void StorageCache::insert(const Storage& source, Storage staged) {
  const void* key = source.identity();
  std::weak_ptr<State> weak_state = state_;
  const ReleaseObserverId observer = source.add_release_observer([weak_state, key] {
    auto state = weak_state.lock();
    if (!state) return;
    Entry doomed;  // destroyed after the lock is released
    std::lock_guard lock(state->mutex);
    auto it = state->entries.find(key);
    if (it == state->entries.end()) return;
    doomed = std::move(it->second);
    state->entries.erase(it);
  });
  Entry previous;
  {
    std::lock_guard lock(state_->mutex);
    Entry& slot = state_->entries[key];
    previous = std::move(slot);
    slot = Entry{source.weak(), std::move(staged), observer, 0};
  }
  if (previous.observer != 0) source.remove_release_observer(previous.observer);
}

void StorageCache::remove(const Storage& source, const Storage& staged) {
  Entry doomed;
  {
    std::lock_guard lock(state_->mutex);
    auto it = state_->entries.find(source.identity());
    if (it == state_->entries.end() || !it->second.staged.is_alias_of(staged)) return;
    doomed = std::move(it->second);
    state_->entries.erase(it);
  }
  source.remove_release_observer(doomed.observer);
}

void StorageCache::clear() {
  absl::flat_hash_map<const void*, Entry> doomed;
  {
    std::lock_guard lock(state_->mutex);
    doomed.swap(state_->entries);
  }
  for (auto& [key, entry] : doomed) {
    if (Storage source = entry.source.lock(); source.defined()) source.remove_release_observer(entry.observer);
  }
}

StagerStats StorageCache::stats() const {
  StagerStats s;
  std::lock_guard lock(state_->mutex);
  for (const auto& [key, entry] : state_->entries) {
    const std::uint64_t n = entry.staged.nbytes();
    ++s.cached_storages;
    s.cached_bytes += n;
    if (is_pinned_kind(entry.staged.memory_kind())) s.pinned_bytes += n;
    if (is_shared_kind(entry.staged.memory_kind())) s.shared_bytes += n;
  }
  return s;
}

}  // namespace stagekit::detail
