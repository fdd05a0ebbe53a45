// Gathered Q8_0 rows in the input-sparse row layout (why and arithmetic:
// gather_rows_q8.h).
#include "kernels/gather_rows_q8.h"

#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "core/aligned_buffer.h"
#include "kernels/byte_dot.h"
#include "kernels/group_prefetch.h"
#include "kernels/intrinsics_warnings.h"
#include "kernels/matmul_quant.h"
#include "kernels/quant_blocks.h"
#include "kernels/relaid_chunk.h"
#include "kernels/sparse_input_q8.h"
#include "kernels/sparse_matmul.h"

FFN_INTRINSICS_WARNINGS_OFF

namespace ffn {

namespace {

constexpr int64_t kChunk = kRelaidChunk;  // weights per vector: two blocks
// List entries per unit of work: one tile of 8 rows for one token (8 row
// streams in flight, as the input-sparse kernel keeps). Units ahead are
// prefetched as one stream (kernels/group_prefetch.h).
constexpr int kUnitRows = 8;

// Lane l of a chunk's dot products belongs to block (l >> 1) & 1 of the
// chunk (gather_rows_q8.h): the lanes 2, 3, 6, 7, ... take the second.
constexpr __mmask16 kSecondBlockLanes = 0xCCCC;

// x prepared for the rows, per token t:
//   q[t * cols + ...]       int8 blocks, permuted within each 64-byte chunk
//                           as the rows' bytes are;
//   scale[(t * chunks + c) * 16 + l]  d_x of the block lane l of chunk c holds;
//   sum[t * nbp + b]        d_xb * sum(q_b), 0 for b >= nb (times the
//                           zero point, the zero point's term).
struct PreparedX {
  AlignedVector<int8_t> q;
  AlignedVector<float> scale, sum;
  int64_t cols = 0, nb = 0, nbp = 0, chunks = 0;
};

FFN_VNNI_TARGET void prepare(const float* x, int64_t n_tok, int64_t cols, PreparedX& p) {
  thread_local QuantizedActivations xa;  // the caller's: prepare runs before the workers start
  xa.quantize(x, n_tok, cols);
  p.cols = cols;
  p.nb = cols / kQuantBlock;
  p.nbp = (p.nb + 15) / 16 * 16;
  p.chunks = cols / kChunk;
  p.q.resize(static_cast<size_t>(n_tok * cols));
  p.scale.resize(static_cast<size_t>(n_tok * p.chunks * 16));
  p.sum.assign(static_cast<size_t>(n_tok * p.nbp), 0.0f);
  // Stored dword i = 4L + k of a chunk holds the weights of outputs
  // 16k + 4L .. +3, i.e. x's dword 4k + L.
  const __m512i swap = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t c = 0; c < p.chunks; ++c) {
      const int64_t at = t * cols + c * kChunk, b = t * p.nb + 2 * c;
      _mm512_store_si512(p.q.data() + at, _mm512_permutexvar_epi32(swap, _mm512_load_si512(xa.q.data() + at)));
      _mm512_store_ps(p.scale.data() + (t * p.chunks + c) * 16,
                      _mm512_mask_blend_ps(kSecondBlockLanes, _mm512_set1_ps(xa.d[size_t(b)]),
                                           _mm512_set1_ps(xa.d[size_t(b + 1)])));
    }
    for (int64_t b = 0; b < p.nb; ++b)
      p.sum[size_t(t * p.nbp + b)] = xa.d[size_t(t * p.nb + b)] * float(xa.sum[size_t(t * p.nb + b)]);
  }
}

// NR listed rows (row[r]: the row's start; the first `valid` are wanted,
// the rest repeat the last) x NT tokens from t0, into y[t * y_stride + r].
// Each chunk step also issues its share of `later` (a unit ahead).
template <DType T, bool kVnni, int NR, int NT>
FFN_VNNI_TARGET void tile(const uint8_t* const* row, GroupPrefetch<kUnitRows>& later, int valid, int64_t first,
                          const PreparedX& p, int64_t t0, float* y, int64_t y_stride) {
  const int64_t share = later.share(p.chunks);
  using Dot = ByteDot<T, kVnni>;
  __m512 acc[NT][NR];
  for (int t = 0; t < NT; ++t)
    for (int r = 0; r < NR; ++r) acc[t][r] = _mm512_setzero_ps();
  const __m512i lane_block = _mm512_setr_epi32(0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1);
  for (int64_t g = 0; g < p.chunks; g += 8) {
    // 8 chunks share one vector of 16 block scales per row.
    const int64_t b0 = 2 * g;
    const __mmask16 in_row = p.nb - b0 >= 16 ? __mmask16(0xffff) : __mmask16((1u << (p.nb - b0)) - 1);
    __m512 dw[NR];
    for (int r = 0; r < NR; ++r)
      dw[r] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(in_row, reinterpret_cast<const uint16_t*>(row[r]) + b0));
    const int64_t n_chunks = std::min<int64_t>(8, p.chunks - g);
    for (int64_t j = 0; j < n_chunks; ++j) {
      const int64_t c = g + j, pos = first + c * relaid_chunk_bytes<T>();
      later.issue(share);
      const __m512i pick = _mm512_add_epi32(_mm512_set1_epi32(int(2 * j)), lane_block);
      __m512i xq[NT];
      __m512 xs[NT];
      for (int t = 0; t < NT; ++t) {
        xq[t] = _mm512_load_si512(p.q.data() + (t0 + t) * p.cols + c * kChunk);
        xs[t] = _mm512_load_ps(p.scale.data() + ((t0 + t) * p.chunks + c) * 16);
      }
      for (int r = 0; r < NR; ++r) {
        const typename Dot::Weights u = Dot::prepare(load_relaid_chunk<T>(row[r] + pos));
        const __m512 s = _mm512_permutexvar_ps(pick, dw[r]);
        for (int t = 0; t < NT; ++t)
          acc[t][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(Dot::accumulate(_mm512_setzero_si512(), u, xq[t])),
                                      _mm512_mul_ps(s, xs[t]), acc[t][r]);
      }
    }
  }
  // The zero point's term, once per row: zero * sum_b d_wb d_xb sum(q_b).
  for (int r = 0; r < valid; ++r) {
    __m512 zero[NT];
    for (int t = 0; t < NT; ++t) zero[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < p.nb; b += 16) {
      const __mmask16 in_row = p.nb - b >= 16 ? __mmask16(0xffff) : __mmask16((1u << (p.nb - b)) - 1);
      const __m512 d = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(in_row, reinterpret_cast<const uint16_t*>(row[r]) + b));
      for (int t = 0; t < NT; ++t)
        zero[t] = _mm512_fmadd_ps(d, _mm512_load_ps(p.sum.data() + (t0 + t) * p.nbp + b), zero[t]);
    }
    for (int t = 0; t < NT; ++t)
      y[t * y_stride + r] = _mm512_reduce_add_ps(acc[t][r]) - float(Dot::kZero) * _mm512_reduce_add_ps(zero[t]);
  }
}

PreparedX& caller_prepared() {
  thread_local PreparedX p;
  return p;
}

}  // namespace

void gather_rows_q8(const WeightMatrix& w, const float* x, int64_t n_tok, const int32_t* rows, int64_t n_rows,
                    float* y, ThreadPool& pool, QuantPath path) {
  if (n_tok <= 0 || n_rows <= 0) return;
  PreparedX& p = caller_prepared();
  prepare(x, n_tok, w.cols, p);
  const bool q8 = w.type == DType::Q8_0;
  const bool vnni = path == QuantPath::Vnni || (path == QuantPath::Auto && cpu_has_vnni());
  const int64_t stride = int64_t(sparse_input_row_stride(w.type, w.cols));
  const int64_t first = int64_t(sparse_input_scale_bytes(w.cols));
  auto row_at = [&](int64_t i) { return w.packed + uint64_t(rows[std::min(i, n_rows - 1)]) * uint64_t(stride); };
  const int64_t ahead = prefetch_groups(kUnitRows * stride);  // in units
  // The stream over the unit of list entries from i (the last entry
  // repeated past the list's end).
  auto start_unit = [&](GroupPrefetch<kUnitRows>& later, int64_t i) {
    const uint8_t* unit_rows[kUnitRows];
    for (int r = 0; r < kUnitRows; ++r) unit_rows[r] = row_at(i + r);
    later.start(unit_rows, stride);
  };
  // List entries [i0, i0 + n), n <= 8, every token: 4 tokens x 4 rows per
  // tile while 4 tokens remain (each row's bytes serve 4 tokens), then 8
  // rows per tile for each remaining token.
  auto unit = [&](int64_t i0, int64_t n) {
    const uint8_t* row[kUnitRows];
    for (int64_t r = 0; r < kUnitRows; ++r) row[r] = row_at(i0 + std::min(r, n - 1));
    GroupPrefetch<kUnitRows> later;
    if (ahead > 0 && i0 + ahead * kUnitRows < n_rows) start_unit(later, i0 + ahead * kUnitRows);
    auto tiles = [&](auto type_tag, auto vnni_tag) {
      constexpr DType T = decltype(type_tag)::value;
      constexpr bool kVnni = decltype(vnni_tag)::value;
      int64_t t = 0;
      for (; t + 4 <= n_tok; t += 4)
        for (int64_t h = 0; h < n; h += 4)
          tile<T, kVnni, 4, 4>(row + h, later, int(std::min<int64_t>(4, n - h)), first, p, t,
                               y + t * n_rows + i0 + h, n_rows);
      for (; t < n_tok; ++t) tile<T, kVnni, 8, 1>(row, later, int(n), first, p, t, y + t * n_rows + i0, n_rows);
    };
    using Q8 = std::integral_constant<DType, DType::Q8_0>;
    using Q4 = std::integral_constant<DType, DType::Q4_0>;
    if (q8 && vnni) tiles(Q8(), std::true_type());
    else if (q8) tiles(Q8(), std::false_type());
    else if (vnni) tiles(Q4(), std::true_type());
    else tiles(Q4(), std::false_type());
  };
  // The threads' split of the list as for every gather (pieces of 64
  // entries, a multiple of the unit).
  for_each_list_piece(n_rows, n_tok * w.cols, pool, [&](int64_t b, int64_t e) {
    prefetch_first_groups<kUnitRows>(ahead, b, e, start_unit);
    for (int64_t i0 = b; i0 < e; i0 += kUnitRows) unit(i0, std::min<int64_t>(kUnitRows, e - i0));
  });
}

}  // namespace ffn

FFN_INTRINSICS_WARNINGS_ON
