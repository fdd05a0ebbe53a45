// StreamSplit hands out every chunk exactly once, each thread's own region
// front to back, and lets a fast thread take the back of a slow one's.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/stream_split.h"

namespace ffn {
namespace {

// Runs n_threads real threads over the split; thread 0 sleeps per chunk when
// `slow_first` (so the others must steal from it), and the others start
// only once it has made its first claim: else a thread 0 that the OS starts
// late finds every chunk taken (seen once in CI under ASan). claims[t] in
// claim order.
std::vector<std::vector<int64_t>> run(StreamSplit& split, int n_threads, bool slow_first) {
  std::vector<std::vector<int64_t>> claims(static_cast<size_t>(n_threads));
  std::vector<std::thread> threads;
  std::atomic<bool> first_claimed{false};
  for (int t = 0; t < n_threads; ++t)
    threads.emplace_back([&, t] {
      if (slow_first && t != 0)
        while (!first_claimed.load()) std::this_thread::yield();
      int64_t c = split.next(t);
      if (t == 0) first_claimed.store(true);
      for (; c >= 0; c = split.next(t)) {
        claims[size_t(t)].push_back(c);
        if (slow_first && t == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
  for (auto& th : threads) th.join();
  return claims;
}

TEST(StreamSplit, EveryChunkExactlyOnceAndOwnRegionInOrder) {
  StreamSplit split;
  for (int n_threads : {1, 2, 3, 5})
    for (int64_t n_chunks : {0, 1, 3, 7, 100, 1000})
      for (bool slow_first : {false, true}) {
        split.reset(n_chunks, n_threads);  // reused: reset must restore every region
        const auto claims = run(split, n_threads, slow_first);
        std::vector<int> seen(static_cast<size_t>(n_chunks), 0);
        for (int t = 0; t < n_threads; ++t) {
          const int64_t begin = n_chunks * t / n_threads, end = n_chunks * (t + 1) / n_threads;
          int64_t expect = begin;  // own chunks come first, in order
          for (int64_t c : claims[size_t(t)]) {
            ASSERT_GE(c, 0);
            ASSERT_LT(c, n_chunks);
            ++seen[size_t(c)];
            if (c >= begin && c < end && expect < end) {
              ASSERT_EQ(c, expect) << "thread " << t << " of " << n_threads << ", " << n_chunks << " chunks";
              ++expect;
            }
          }
        }
        for (int64_t c = 0; c < n_chunks; ++c)
          ASSERT_EQ(seen[size_t(c)], 1) << "chunk " << c << " of " << n_chunks << ", " << n_threads << " threads";
      }
}

TEST(StreamSplit, FastThreadsStealFromTheBackOfASlowOne) {
  StreamSplit split;
  split.reset(400, 2);
  const auto claims = run(split, 2, /*slow_first=*/true);
  // Thread 0 (slow) owns [0, 200) and sleeps 200 us per chunk; thread 1 is
  // done with its own in microseconds and then takes 199, 198, ...
  ASSERT_FALSE(claims[1].empty());
  int64_t stolen = 0;
  for (int64_t c : claims[1])
    if (c < 200) ++stolen;
  EXPECT_GT(stolen, 100) << "thread 1 took " << stolen << " of thread 0's chunks";
  EXPECT_EQ(claims[0].front(), 0);
  const size_t first_stolen = claims[1].size() - size_t(stolen);
  if (stolen > 0) {
    EXPECT_EQ(claims[1][first_stolen], 199);  // from the back
  }
}

TEST(StreamSplit, RejectsCountsBeyond32Bits) {
  StreamSplit split;
  EXPECT_THROW(split.reset(int64_t(1) << 33, 2), std::invalid_argument);
  EXPECT_THROW(split.reset(10, 0), std::invalid_argument);
}

}  // namespace
}  // namespace ffn
