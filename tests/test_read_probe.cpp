// The bandwidth probe of `ffn bench` (eval/speed_bench.h): its reads are
// what decode is measured against, so they must read every word they claim.
#include <gtest/gtest.h>

#include <initializer_list>

#include "core/thread_pool.h"
#include "eval/speed_bench.h"

namespace ffn {
namespace {

// Sum of words [first, first + count) of an n-word probe buffer, wrapping.
uint64_t expected_sum(uint64_t n, uint64_t first, uint64_t count) {
  uint64_t s = 0;
  for (uint64_t i = 0; i < count; ++i) s += ((first + i) % n) * ReadBandwidthProbe::kWordFactor;
  return s;
}

TEST(ReadBandwidthProbe, SumRangeReadsEveryWordAndWraps) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    const uint64_t n = 12345;  // odd: the threads' shares are uneven
    ReadBandwidthProbe probe(pool, n * 8);
    ASSERT_EQ(probe.words(), n);
    // Inside, up to the end, across the end, longer than the buffer (twice
    // round), one word, and a start past the end.
    const std::pair<uint64_t, uint64_t> ranges[] = {{0, n}, {17, 1000}, {n - 5, 5}, {n - 300, 1234},
                                                    {77, 2 * n + 99}, {n - 1, 1}, {n + 10, 20}};
    for (const auto& [first, count] : ranges)
      EXPECT_EQ(probe.sum_range(first, count), expected_sum(n, first, count))
          << threads << " threads, words " << first << " + " << count;
  }
}

TEST(ReadBandwidthProbe, ReadNextContinuesWhereTheLastReadStopped) {
  ThreadPool pool(2);
  const uint64_t n = 1001;
  ReadBandwidthProbe probe(pool, n * 8);
  uint64_t at = 0;
  // Shorter than a pass, several passes, past the end, exactly round.
  for (const uint64_t count : std::initializer_list<uint64_t>{7, 1500, 3 * n + 2, n}) {
    EXPECT_EQ(probe.read_next(count), expected_sum(n, at, count)) << "words " << at << " + " << count;
    at = (at + count) % n;
  }
}

TEST(ReadBandwidthProbe, MeasureReturnsARate) {
  ThreadPool pool(2);
  ReadBandwidthProbe probe(pool, 1 << 20);
  EXPECT_GT(probe.measure(2), 0.0);
}

}  // namespace
}  // namespace ffn
