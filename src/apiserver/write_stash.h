// Hands the objects the REST layer has just written to the watch cache, which would otherwise
// parse the stored text of the same change again: by store key and revision, bounded, used once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

namespace orch::api {

// Thread-safe. Writers Put after their store write succeeded; the watch cache Takes, in revision
// order, for every change it reads from the store. A change written by another process (etcd
// shared by several servers) or put too late simply misses and is parsed as before.
class WriteStash {
 public:
  // The decoded objects of one change, exactly as Rest::Decode would return them: the new
  // state (resourceVersion set) and, for updates, the state it replaced. Never mutated.
  struct Objects {
    std::shared_ptr<const nlohmann::json> object;
    std::shared_ptr<const nlohmann::json> prev;  // null when unknown or a creation
  };

  static constexpr size_t kDefaultCapacity = 512;
  explicit WriteStash(size_t capacity = kDefaultCapacity) : capacity_(capacity) {}
  WriteStash(const WriteStash&) = delete;
  WriteStash& operator=(const WriteStash&) = delete;

  // Ignored when the cache has already gone past `revision`. When full, the oldest entry goes.
  void Put(const std::string& key, int64_t revision, Objects objects);
  // The objects stashed for this change, if any; forgets them and everything stashed for
  // earlier revisions (the cache will never ask for those).
  std::optional<Objects> Take(const std::string& key, int64_t revision);
  size_t size() const;

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::map<std::pair<int64_t, std::string>, Objects> entries_;  // guarded by mu_
  int64_t taken_ = 0;  // guarded by mu_: the newest revision Take was asked for
};

}  // namespace orch::api
