// The fused sparse tail of a gate-sparsified FFN over paired F32/F16/BF16
// neuron rows (why, layout and arithmetic: neuron_rows.h): matmul.cpp's
// gather tile computes the kept neurons' u from their up rows, and
// sparse_matmul.cpp's row accumulation adds h * down row into y, a group of
// 8 neurons at a time, each pair of rows one prefetch stream.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/neuron_rows_dense.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/dense_rows-inl.h"
#include "kernels/dense_tile-inl.h"

#include <algorithm>
#include <stdexcept>

#include "core/thread_pool.h"
#include "kernels/group_prefetch.h"
#include "kernels/neuron_rows.h"
#include "kernels/sparse_matmul.h"

HWY_BEFORE_NAMESPACE();
namespace ffn {
namespace HWY_NAMESPACE {

// Neurons per group: the one-token gather's 8-row tile (matmul.cpp) and the
// input-sparse product's 8 rows (sparse_matmul.cpp), so that the sums are
// the two passes' sums.
constexpr int kGroup = 8;

// Kept neurons [0, n) of one share (act and active at the share's first
// entry) into y[0, d), which this overwrites. pairs: up row j at
// pairs + j * pitch elements, its down row d elements after it.
template <typename WT>
void ShareOfNeurons(const WT* pairs, int64_t pitch, int64_t d, const float* x, const float* act,
                    const int32_t* active, int64_t n, float* y) {
  std::fill(y, y + d, 0.0f);
  if (n <= 0) return;
  auto pair = [&](int64_t k) { return pairs + int64_t(active[std::min(k, n - 1)]) * pitch; };
  const int64_t pair_bytes = 2 * d * int64_t(sizeof(WT));
  auto start_group = [&](GroupPrefetch<kGroup>& later, int64_t k) {
    const uint8_t* starts[kGroup];
    for (int r = 0; r < kGroup; ++r) starts[r] = reinterpret_cast<const uint8_t*>(pair(k + r));
    later.start(starts, pair_bytes);
    // Issued over the tile's steps on the up rows and then the down rows'
    // (each sizes its share by its own steps): issued over the tile alone,
    // the fused pass ran at 0.94-0.99x of the two passes instead of
    // 1.06-1.10x (BM_GatedNeuronRows, BF16, Zen 4 VM, 2026-12-02).
    later.spread_over(2);
  };
  const int64_t ahead = prefetch_groups(kGroup * pair_bytes);
  prefetch_first_groups<kGroup>(ahead, 0, n, start_group);
  int64_t k = 0;
  for (; k + kGroup <= n; k += kGroup) {
    const WT *up[kGroup], *down[kGroup];
    for (int r = 0; r < kGroup; ++r) {
      up[r] = pair(k + r);
      down[r] = up[r] + d;
    }
    GroupPrefetch<kGroup> later(kernel_prefetch_pattern());
    if (ahead > 0 && k + ahead * kGroup < n) start_group(later, k + ahead * kGroup);
    float h[kGroup];
    // Along the rows the up half runs on into the down half of its pair.
    Tile<1, kGroup, WT>(x, d, up, &later, h, 1, kGroup, pair_bytes);
    for (int r = 0; r < kGroup; ++r) h[r] = act[k + r] * h[r];
    DenseRows<kGroup, true>(down, down, later, h, 1, 1, y, d, d);
  }
  for (; k < n; ++k) {
    const WT* up[1] = {pair(k)};
    const WT* down[1] = {up[0] + d};
    GroupPrefetch<1> none;
    float h;
    Tile<1, 1, WT>(x, d, up, static_cast<GroupPrefetch<1>*>(nullptr), &h, 1, 1);
    h = act[k] * h;
    DenseRows<1, true>(down, down, none, &h, 1, 1, y, d, d);
  }
}

// Type-erased entry (HWY_EXPORT needs one non-template function).
void ShareOfNeuronsTyped(DType type, const uint8_t* pairs, uint64_t pitch, int64_t d, const float* x,
                         const float* act, const int32_t* active, int64_t n, float* y) {
  switch (type) {
    case DType::F16: {
      const auto* w = reinterpret_cast<const hwy::float16_t*>(pairs);
      return ShareOfNeurons(w, int64_t(pitch / sizeof(*w)), d, x, act, active, n, y);
    }
    case DType::BF16: {
      const auto* w = reinterpret_cast<const hwy::bfloat16_t*>(pairs);
      return ShareOfNeurons(w, int64_t(pitch / sizeof(*w)), d, x, act, active, n, y);
    }
    default: {
      const auto* w = reinterpret_cast<const float*>(pairs);
      return ShareOfNeurons(w, int64_t(pitch / sizeof(*w)), d, x, act, active, n, y);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace ffn
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ffn {

HWY_EXPORT(ShareOfNeuronsTyped);

void gated_neuron_rows_dense(const WeightMatrix& up, const WeightMatrix& down_t, const float* x, const float* act,
                             const int32_t* active, int64_t n_active, float* y, ThreadPool& pool) {
  if (!neuron_rows_are_paired(up, down_t) || up.data == nullptr)
    throw std::invalid_argument("gated_neuron_rows_dense: not F32/F16/BF16 rows made by paired_neuron_rows");
  sum_list_shares(n_active, down_t.cols, y, pool, [&](int64_t k0, int64_t k1, float* out) {
    HWY_DYNAMIC_DISPATCH(ShareOfNeuronsTyped)(up.type, up.data, up.row_pitch, up.cols, x, act + k0, active + k0,
                                              k1 - k0, out);
  });
}

}  // namespace ffn
#endif
