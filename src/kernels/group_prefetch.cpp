#include "kernels/group_prefetch.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/cpu_vendor.h"

namespace ffn {

namespace {

constexpr int64_t kMinAheadBytes = 16384;
std::atomic<int> groups_override{-1};
std::atomic<int> pattern_override{-1};  // -1: none, else a PrefetchPattern

PrefetchPattern decided_pattern() {
  const char* env = std::getenv("FFN_PREFETCH");
  if (env != nullptr && std::strcmp(env, "rows") == 0) return PrefetchPattern::kAlongRows;
  if (env != nullptr && std::strcmp(env, "groups") == 0) return PrefetchPattern::kGroupStream;
  if (env != nullptr && *env != '\0')
    std::fprintf(stderr, "ffn: warning: FFN_PREFETCH='%s' ignored (expected rows or groups)\n", env);
  return cpu_is_intel() ? PrefetchPattern::kAlongRows : PrefetchPattern::kGroupStream;
}

}  // namespace

int prefetch_groups(int64_t group_bytes) {
  const int forced = groups_override.load(std::memory_order_relaxed);
  if (forced >= 0) return forced;
  return int(std::max<int64_t>(1, (kMinAheadBytes + group_bytes - 1) / std::max<int64_t>(1, group_bytes)));
}

PrefetchPattern kernel_prefetch_pattern() {
  const int forced = pattern_override.load(std::memory_order_relaxed);
  if (forced >= 0) return PrefetchPattern(forced);
  static const PrefetchPattern decided = decided_pattern();
  return decided;
}

void override_prefetch_pattern(std::optional<PrefetchPattern> pattern) {
  pattern_override.store(pattern ? int(*pattern) : -1, std::memory_order_relaxed);
}

void override_prefetch_groups(int groups) { groups_override.store(groups, std::memory_order_relaxed); }

}  // namespace ffn
