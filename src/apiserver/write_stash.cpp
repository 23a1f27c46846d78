// Implementation of the write stash (write_stash.h): an ordered map by (revision, key), trimmed
// from the oldest end by the watch cache's progress and by its capacity.
#include "write_stash.h"

namespace orch::api {

void WriteStash::Put(const std::string& key, int64_t revision, Objects objects) {
  if (!objects.object) return;
  std::lock_guard lock(mu_);
  // Several keys may share a revision (one transaction): only strictly older ones are past.
  if (revision < taken_) return;
  entries_.insert_or_assign({revision, key}, std::move(objects));
  while (entries_.size() > capacity_) entries_.erase(entries_.begin());
}

std::optional<WriteStash::Objects> WriteStash::Take(const std::string& key, int64_t revision) {
  std::lock_guard lock(mu_);
  if (revision > taken_) taken_ = revision;
  if (entries_.empty()) return std::nullopt;
  std::optional<Objects> found;
  auto it = entries_.find({revision, key});
  if (it != entries_.end()) {
    found = std::move(it->second);
    entries_.erase(it);
  }
  entries_.erase(entries_.begin(), entries_.lower_bound({revision, std::string()}));
  return found;
}

size_t WriteStash::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace orch::api
