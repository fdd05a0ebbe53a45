// sum_words (kernels/ops.h), the read kernel of the bandwidth probes (ffn
// bench's "% of bandwidth", BM_ReadBandwidth), with Google Highway: one
// full-width load per vector. Why: the probe must read as fast as the
// machine can, or every kernel measured against it looks better than it
// is. As a plain loop (SSE2 at the default target) it read 10.5 GB/s on one
// thread and 21.8 on two of an Intel Xeon (family 6 model 207) where
// 64-byte loads read 15.6 and 30.9 (/tmp/bw experiment, 1 GiB, best of 5),
// and the dense Q8_0 decode kernel "reached" 127% of it.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/sum_words.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include "kernels/ops.h"

HWY_BEFORE_NAMESPACE();
namespace ffn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

uint64_t SumWords(const uint64_t* HWY_RESTRICT p, int64_t n) {
  const hn::ScalableTag<uint64_t> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  // Four accumulators: the adds never wait on each other, so only the loads
  // set the pace.
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::Add(s0, hn::LoadU(d, p + i));
    s1 = hn::Add(s1, hn::LoadU(d, p + i + N));
    s2 = hn::Add(s2, hn::LoadU(d, p + i + 2 * N));
    s3 = hn::Add(s3, hn::LoadU(d, p + i + 3 * N));
  }
  uint64_t s = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
  for (; i < n; ++i) s += p[i];
  return s;
}

}  // namespace HWY_NAMESPACE
}  // namespace ffn
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ffn {

HWY_EXPORT(SumWords);

uint64_t sum_words(const uint64_t* p, int64_t n) { return HWY_DYNAMIC_DISPATCH(SumWords)(p, n); }

}  // namespace ffn
#endif  // HWY_ONCE
