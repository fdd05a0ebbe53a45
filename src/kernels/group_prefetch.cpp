#include "kernels/group_prefetch.h"

#include <atomic>

namespace ffn {

namespace {

constexpr int64_t kMinAheadBytes = 16384;
std::atomic<int> groups_override{-1};

}  // namespace

int prefetch_groups(int64_t group_bytes) {
  const int forced = groups_override.load(std::memory_order_relaxed);
  if (forced >= 0) return forced;
  return int(std::max<int64_t>(1, (kMinAheadBytes + group_bytes - 1) / std::max<int64_t>(1, group_bytes)));
}

void override_prefetch_groups(int groups) { groups_override.store(groups, std::memory_order_relaxed); }

}  // namespace ffn
