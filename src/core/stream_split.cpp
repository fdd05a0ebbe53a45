#include "core/stream_split.h"

#include <stdexcept>

namespace ffn {

namespace {

constexpr uint64_t pack(uint64_t front, uint64_t back) { return front << 32 | back; }
constexpr int64_t front_of(uint64_t r) { return int64_t(r >> 32); }
constexpr int64_t back_of(uint64_t r) { return int64_t(r & 0xffffffffu); }

}  // namespace

void StreamSplit::reset(int64_t n_chunks, int n_threads) {
  if (n_chunks < 0 || n_chunks > 0xffffffffll || n_threads < 1)
    throw std::invalid_argument("StreamSplit: chunk count must fit 32 bits and threads be >= 1");
  if (n_threads > capacity_) {
    regions_ = std::make_unique<Region[]>(size_t(n_threads));
    capacity_ = n_threads;
  }
  n_threads_ = n_threads;
  for (int t = 0; t < n_threads; ++t)
    regions_[t].range.store(pack(uint64_t(n_chunks * t / n_threads), uint64_t(n_chunks * (t + 1) / n_threads)),
                            std::memory_order_relaxed);
}

int64_t StreamSplit::next(int thread) {
  // Exclusivity comes from the compare-exchange on one word, whatever the
  // memory order; the pass's results are published by the pool's join.
  std::atomic<uint64_t>& own = regions_[thread].range;
  uint64_t r = own.load(std::memory_order_relaxed);
  while (front_of(r) < back_of(r))
    if (own.compare_exchange_weak(r, pack(uint64_t(front_of(r) + 1), uint64_t(back_of(r))),
                                  std::memory_order_relaxed))
      return front_of(r);
  for (;;) {
    int victim = -1;
    int64_t most = 0;
    for (int t = 0; t < n_threads_; ++t) {
      const uint64_t v = regions_[t].range.load(std::memory_order_relaxed);
      if (back_of(v) - front_of(v) > most) {
        most = back_of(v) - front_of(v);
        victim = t;
      }
    }
    if (victim < 0) return -1;
    std::atomic<uint64_t>& theirs = regions_[victim].range;
    uint64_t v = theirs.load(std::memory_order_relaxed);
    while (front_of(v) < back_of(v))
      if (theirs.compare_exchange_weak(v, pack(uint64_t(front_of(v)), uint64_t(back_of(v) - 1)),
                                       std::memory_order_relaxed))
        return back_of(v) - 1;
  }
}

}  // namespace ffn
