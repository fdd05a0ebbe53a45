// The fused sparse tail of a gate-sparsified FFN over paired neuron rows
// (why, layout and arithmetic: neuron_rows_q8.h).
#include "kernels/neuron_rows_q8.h"

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

bool in_row_layout(const WeightMatrix& w) {
  return (w.type == DType::Q8_0 || w.type == DType::Q4_0) && w.packed != nullptr && w.data == nullptr;
}

// Kept neurons [0, n) of one share (x prepared in p, act and active at the
// share's first entry) added into y[0, n_out), which this zeroes first.
template <DType T, bool kVnni>
FFN_VNNI_TARGET void share_of_neurons(const WeightMatrix& up_rows, const relaid::PreparedX& p, const float* act,
                                      const int32_t* active, int64_t n, float* y) {
  const int64_t n_out = up_rows.cols;
  const int64_t stride = int64_t(sparse_input_row_stride(T, n_out)), first = int64_t(sparse_input_scale_bytes(n_out));
  const uint64_t pitch = up_rows.packed_pitch;
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
  GroupPrefetch<kGroup> later;
  for (int64_t k = 0; k < n; k += kGroup) {
    const uint8_t *up[kGroup], *down[kGroup];
    const uint16_t* down_scales[kGroup];
    for (int r = 0; r < kGroup; ++r) {
      up[r] = pair_start(k + r);
      down_scales[r] = reinterpret_cast<const uint16_t*>(up[r] + stride);
      down[r] = up[r] + stride + first;
    }
    if (ahead > 0 && k + ahead * kGroup < n) start_group(later, k + ahead * kGroup);
    const int64_t share = later.share(steps);
    const int valid = int(std::min<int64_t>(kGroup, n - k));
    float h[kGroup];
    relaid::gather_tile<T, kVnni, kGroup, 1>(up, later, share, valid, first, p, 0, h, 1);
    for (int r = 0; r < valid; ++r) h[r] = act[k + r] * h[r];
    relaid::prepare_group<kQuads, ByteDot<T, kVnni>::kZero>(down_scales, h, 1, valid, 1, nb, nbp, q.data(),
                                                              scale.data(), bias.data());
    relaid::group_tile<T, kVnni, kQuads>(down, later, share, n_out, 1, q.data(), scale.data(), nbp, y, n_out);
  }
  // The zero point's term, one value per block of 32 outputs.
  relaid::add_block_terms(bias.data(), n_out, y);
}

}  // namespace

bool can_pair_neuron_rows(const WeightMatrix& up, const WeightMatrix& down_t) {
  return in_row_layout(up) && in_row_layout(down_t) && up.packed_pitch == 0 && down_t.packed_pitch == 0 &&
         up.type == down_t.type && up.rows == down_t.rows && up.cols == down_t.cols && up.rows > 0 &&
         up.cols > 0 && up.cols % kRelaidChunk == 0;
}

NeuronRows paired_neuron_rows(const WeightMatrix& up, const WeightMatrix& down_t, ThreadPool* pool) {
  if (!can_pair_neuron_rows(up, down_t))
    throw std::invalid_argument("paired_neuron_rows: up and down_t are not one shape and type in the row layout");
  const uint64_t stride = sparse_input_row_stride(up.type, up.cols);
  std::shared_ptr<uint8_t> buf = packed_weight_buffer(uint64_t(up.rows) * 2 * stride);
  auto copy = [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      std::memcpy(buf.get() + uint64_t(j) * 2 * stride, up.packed + uint64_t(j) * stride, stride);
      std::memcpy(buf.get() + uint64_t(j) * 2 * stride + stride, down_t.packed + uint64_t(j) * stride, stride);
    }
  };
  if (pool) pool->parallel_for(up.rows, [&](int64_t b, int64_t e, int) { copy(b, e); });
  else copy(0, up.rows);
  NeuronRows out;
  out.up = WeightMatrix{.type = up.type, .rows = up.rows, .cols = up.cols};
  out.down_t = WeightMatrix{.type = down_t.type, .rows = down_t.rows, .cols = down_t.cols};
  out.up.packed = buf.get();
  out.down_t.packed = buf.get() + stride;
  out.up.packed_pitch = out.down_t.packed_pitch = 2 * stride;
  out.up.packed_owned = buf;
  out.down_t.packed_owned = std::move(buf);
  return out;
}

bool neuron_rows_are_paired(const WeightMatrix& up, const WeightMatrix& down_t) {
  if (!in_row_layout(up) || !in_row_layout(down_t) || up.type != down_t.type || up.rows != down_t.rows ||
      up.cols != down_t.cols)
    return false;
  const uint64_t stride = sparse_input_row_stride(up.type, up.cols);
  return up.packed_pitch == 2 * stride && down_t.packed_pitch == 2 * stride && down_t.packed == up.packed + stride;
}

void gated_neuron_rows_q8(const WeightMatrix& up, const WeightMatrix& down_t, const float* x, const float* act,
                          const int32_t* active, int64_t n_active, float* y, ThreadPool& pool, QuantPath path) {
  if (!neuron_rows_are_paired(up, down_t))
    throw std::invalid_argument("gated_neuron_rows_q8: rows not made by paired_neuron_rows");
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
