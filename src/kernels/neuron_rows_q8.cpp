// The fused sparse tail of a gate-sparsified FFN over paired Q8_0/Q4_0
// neuron rows in the VNNI row layout (why, layout and arithmetic:
// neuron_rows.h).
#include "kernels/neuron_rows.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "kernels/gather_tile-inl.h"
#include "kernels/group_prefetch.h"
#include "kernels/intrinsics_warnings.h"
#include "kernels/packed_quant.h"
#include "kernels/sparse_input_group-inl.h"
#include "kernels/sparse_input_q8.h"
#include "kernels/sparse_matmul.h"

FFN_INTRINSICS_WARNINGS_OFF

namespace ffn {

namespace {

// Neurons per group: the input-sparse kernel's 8 rows (2 quadruples) for
// the down rows, the gather's 8-row tile for the up rows.
constexpr int kQuads = 2;
constexpr int kGroup = 4 * kQuads;

// Kept neurons [0, n) of one share (x prepared in p, act and active at the
// share's first entry) added into y[0, n_out), which this zeroes first.
template <DType T, bool kVnni>
FFN_VNNI_TARGET void share_of_neurons(const WeightMatrix& up_rows, const relaid::PreparedX& p, const float* act,
                                      const int32_t* active, int64_t n, float* y) {
  const int64_t n_out = up_rows.cols;
  const int64_t stride = int64_t(sparse_input_row_stride(T, n_out)), first = int64_t(sparse_input_scale_bytes(n_out));
  const uint64_t pitch = up_rows.row_pitch;
  const int64_t nb = n_out / kQuantBlock, nbp = (nb + 15) / 16 * 16;
  thread_local AlignedVector<int32_t> q;
  thread_local AlignedVector<float> scale, bias;
  q.resize(size_t(kQuads * nbp));
  scale.resize(size_t(nbp));
  bias.assign(size_t(nbp), 0.0f);
  std::fill(y, y + n_out, 0.0f);
  if (n <= 0) return;
  // Neuron k's pair (up row, then down row): one stream of 2 strides.
  auto pair_start = [&](int64_t k) { return up_rows.packed + uint64_t(active[std::min(k, n - 1)]) * pitch; };
  auto start_group = [&](GroupPrefetch<kGroup>& later, int64_t k) {
    const uint8_t* starts[kGroup];
    for (int r = 0; r < kGroup; ++r) starts[r] = pair_start(k + r);
    later.start(starts, 2 * stride);
  };
  const int64_t ahead = prefetch_groups(kGroup * 2 * stride);
  prefetch_first_groups<kGroup>(ahead, 0, n, start_group);
  // The stream's lines are spread over both halves' chunk steps.
  const int64_t steps = p.chunks + n_out / kRelaidChunk;
  GroupPrefetch<kGroup> later(kernel_prefetch_pattern());
  for (int64_t k = 0; k < n; k += kGroup) {
    const uint8_t *up[kGroup], *down[kGroup];
    const uint16_t* down_scales[kGroup];
    for (int r = 0; r < kGroup; ++r) {
      up[r] = pair_start(k + r);
      down_scales[r] = reinterpret_cast<const uint16_t*>(up[r] + stride);
      down[r] = up[r] + stride + first;
    }
    if (ahead > 0 && k + ahead * kGroup < n) start_group(later, k + ahead * kGroup);
    else later.stop();
    const int64_t share = later.share(steps);
    const int valid = int(std::min<int64_t>(kGroup, n - k));
    float h[kGroup];
    // Along the rows the up half runs on into the down half of its pair.
    relaid::gather_tile<T, kVnni, kGroup, 1>(up, later, share, 2 * stride, valid, first, p, 0, h, 1);
    for (int r = 0; r < valid; ++r) h[r] = act[k + r] * h[r];
    relaid::prepare_group<kQuads, ByteDot<T, kVnni>::kZero>(down_scales, h, 1, valid, 1, nb, nbp, q.data(),
                                                              scale.data(), bias.data());
    relaid::group_tile<T, kVnni, kQuads>(down, later, share, n_out, 1, q.data(), scale.data(), nbp, y, n_out);
  }
  // The zero point's term, one value per block of 32 outputs.
  relaid::add_block_terms(bias.data(), n_out, y);
}

}  // namespace

void gated_neuron_rows_q8(const WeightMatrix& up, const WeightMatrix& down_t, const float* x, const float* act,
                          const int32_t* active, int64_t n_active, float* y, ThreadPool& pool, QuantPath path) {
  if (!neuron_rows_are_paired(up, down_t) || up.packed == nullptr)
    throw std::invalid_argument("gated_neuron_rows_q8: not Q8_0/Q4_0 rows made by paired_neuron_rows");
  relaid::PreparedX& p = relaid::caller_prepared_x();
  relaid::prepare_x(x, 1, up.cols, p);
  const bool vnni = path == QuantPath::Vnni || (path == QuantPath::Auto && cpu_has_vnni());
  auto run = [&](auto type_tag, auto vnni_tag) {
    sum_list_shares(n_active, down_t.cols, y, pool, [&](int64_t k0, int64_t k1, float* out) {
      share_of_neurons<decltype(type_tag)::value, decltype(vnni_tag)::value>(up, p, act + k0, active + k0, k1 - k0,
                                                                             out);
    });
  };
  with_relaid_kernel(up.type, vnni, run);
}

}  // namespace ffn

FFN_INTRINSICS_WARNINGS_ON
