// The dense dot-product tile (F32, F16, BF16 weights widened to fp32 in
// registers) shared by the dense products and gathers (matmul.cpp) and the
// fused gate-sparse tail (neuron_rows_dense.cpp). Included inside each
// kernel's translation unit, once per compiled target (Highway's per-target
// include guard idiom).
#if defined(FFN_KERNELS_DENSE_TILE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FFN_KERNELS_DENSE_TILE_INL_H_
#undef FFN_KERNELS_DENSE_TILE_INL_H_
#else
#define FFN_KERNELS_DENSE_TILE_INL_H_
#endif

#include <cstdint>

#include "hwy/highway.h"
#include "kernels/group_prefetch.h"
#include "kernels/weight_load-inl.h"

HWY_BEFORE_NAMESPACE();
namespace ffn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// NT tokens x NR rows (w[r]: row r's first element; the rows need not be
// adjacent); two accumulator sets (even / odd vectors) hide the FMA latency
// when NT * NR is small. A gather passes `later` (the rows a group or more
// ahead, kernels/group_prefetch.h) and the tile issues an equal share of
// it at every step, or its prefetches along the rows, which end
// `row_bytes` after w[r] (default: the n_in weights the tile reads).
template <int NT, int NR, typename WT>
void Tile(const float* HWY_RESTRICT x, int64_t n_in, const WT* const* w, GroupPrefetch<NR>* later,
          float* HWY_RESTRICT y, int64_t y_stride, int64_t n_rows, int64_t row_bytes = -1) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  using V = hn::Vec<hn::ScalableTag<float>>;
  V acc[2][NT][NR];
  for (int k = 0; k < 2; ++k)
    for (int t = 0; t < NT; ++t)
      for (int r = 0; r < NR; ++r) acc[k][t][r] = hn::Zero(d);
  auto step = [&](int64_t i, V(&a)[NT][NR]) HWY_ATTR {
    V wv[NR];
    for (int r = 0; r < NR; ++r) wv[r] = LoadWeights(d, w[r] + i);
    for (int t = 0; t < NT; ++t) {
      const V xv = hn::LoadU(d, x + t * n_in + i);
      for (int r = 0; r < NR; ++r) a[t][r] = hn::MulAdd(xv, wv[r], a[t][r]);
    }
  };
  const int64_t share = later ? later->share(n_in / (2 * N)) : 0;
  constexpr int64_t kStepBytes = 2 * int64_t(hn::MaxLanes(hn::ScalableTag<float>())) * int64_t(sizeof(WT));
  const int64_t end = row_bytes >= 0 ? row_bytes : n_in * int64_t(sizeof(WT));
  int64_t i = 0;
  for (; i + 2 * N <= n_in; i += 2 * N) {
    if (later) {
      later->issue(share);
      prefetch_along<NR, kStepBytes>(*later, w, i * int64_t(sizeof(WT)), end);
    }
    step(i, acc[0]);
    step(i + N, acc[1]);
  }
  for (; i + N <= n_in; i += N) step(i, acc[0]);
  for (int t = 0; t < NT; ++t)
    for (int r = 0; r < NR && r < n_rows; ++r) {
      float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc[0][t][r], acc[1][t][r])));
      for (int64_t j = i; j < n_in; ++j) s += x[t * n_in + j] * WeightToFloat(w[r][j]);
      y[t * y_stride + r] = s;
    }
}

}  // namespace HWY_NAMESPACE
}  // namespace ffn
HWY_AFTER_NAMESPACE();

#endif  // FFN_KERNELS_DENSE_TILE_INL_H_
