// The dense-row accumulation of the input-sparse products (F32, F16, BF16
// rows widened to fp32 in registers), shared by sparse_matmul.cpp and the
// fused gate-sparse tail (neuron_rows_dense.cpp), with the prefetch helpers
// of the several-token tiles. Included inside each kernel's translation
// unit, once per compiled target (Highway's per-target include guard idiom).
#if defined(FFN_KERNELS_DENSE_ROWS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef FFN_KERNELS_DENSE_ROWS_INL_H_
#undef FFN_KERNELS_DENSE_ROWS_INL_H_
#else
#define FFN_KERNELS_DENSE_ROWS_INL_H_
#endif

#include <algorithm>
#include <cstdint>

#include "hwy/highway.h"
#include "kernels/group_prefetch.h"
#include "kernels/quant_block-inl.h"
#include "kernels/weight_load-inl.h"

HWY_BEFORE_NAMESPACE();
namespace ffn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Several tokens: software prefetch distance in bytes along each row
// segment of a column tile. The active rows are scattered, so the hardware
// prefetchers lose the stream at every row (and every 4 KiB page) and
// restart; prefetching a fixed distance ahead in each of the current rows,
// then into the next group's rows as the current ones end, keeps ~NR * 2
// KiB in flight across those jumps. (One core of the AMD EPYC here, 50%
// density: 1 KiB ahead was up to ~15% slower for F16 and Q8_0, 3 or 4 KiB
// no better; noisy machine, best of 3.) One token streams whole rows and
// prefetches groups ahead instead (kernels/group_prefetch.h).
constexpr int64_t kPrefetchBytes = 2048;

HWY_INLINE void PrefetchRead(const void* p) { __builtin_prefetch(p, 0, 3); }

// What to prefetch `ahead` elements past position c of a row segment of n:
// further along this row, or in the next group's row as this one ends — but
// at most one group ahead, which is all a short segment (a column tile of a
// multi-token product) can use before the next group reads it.
template <typename T>
HWY_INLINE const T* Ahead(const T* row, const T* next, int64_t c, int64_t ahead, int64_t n) {
  const int64_t a = c + ahead;
  return a < n ? row + a : next + std::min(a - n, c);
}

// y[t * y_stride + c] += sum_r x[r * x_stride + t] * w[r][c] for c in [0, n),
// NR dense rows (x: the rows' activations, token-minor). kOne: a single
// token, whose NR activations stay in registers, and which issues its
// share of `later` (a group ahead), or its prefetches along the rows, every
// 64 bytes of weights instead.
template <int NR, bool kOne, typename WT>
HWY_INLINE void DenseRows(const WT* const* w, const WT* const* next, GroupPrefetch<NR>& later,
                          const float* HWY_RESTRICT x, int64_t x_stride, int64_t n_tok, float* HWY_RESTRICT y,
                          int64_t y_stride, int64_t n) {
  const D d;
  // Prefetch one cache line per row every 64 bytes of weights. (Written
  // out in each loop: GCC 12 dropped the prefetches of a lambda here.)
  constexpr int64_t kLine = 64 / int64_t(sizeof(WT));
  constexpr int64_t kAhead = kPrefetchBytes / int64_t(sizeof(WT));
  int64_t c = 0;
  if constexpr (kOne) {
    const int64_t share = later.share((n + kLine - 1) / kLine);
    V xs[NR];
    for (int r = 0; r < NR; ++r) xs[r] = hn::Set(d, x[r * x_stride]);
    for (; c + kLanes <= n; c += kLanes) {
      if (c % kLine < kLanes) {
        later.issue(share);
        prefetch_along<NR>(later, w, c * int64_t(sizeof(WT)), n * int64_t(sizeof(WT)));
      }
      V acc = hn::LoadU(d, y + c);
      for (int r = 0; r < NR; ++r) acc = hn::MulAdd(LoadWeights(d, w[r] + c), xs[r], acc);
      hn::StoreU(acc, d, y + c);
    }
  } else {
    for (; c + kLanes <= n; c += kLanes) {
      if (c % kLine < kLanes) {
        for (int r = 0; r < NR; ++r) PrefetchRead(Ahead(w[r], next[r], c, kAhead, n));
      }
      V wv[NR];
      for (int r = 0; r < NR; ++r) wv[r] = LoadWeights(d, w[r] + c);
      for (int64_t t = 0; t < n_tok; ++t) {
        float* yt = y + t * y_stride + c;
        V acc = hn::LoadU(d, yt);
        for (int r = 0; r < NR; ++r) acc = hn::MulAdd(wv[r], hn::Set(d, x[r * x_stride + t]), acc);
        hn::StoreU(acc, d, yt);
      }
    }
  }
  for (; c < n; ++c)
    for (int64_t t = 0; t < n_tok; ++t) {
      float s = y[t * y_stride + c];
      for (int r = 0; r < NR; ++r) s += x[r * x_stride + t] * WeightToFloat(w[r][c]);
      y[t * y_stride + c] = s;
    }
}

}  // namespace HWY_NAMESPACE
}  // namespace ffn
HWY_AFTER_NAMESPACE();

#endif  // FFN_KERNELS_DENSE_ROWS_INL_H_
