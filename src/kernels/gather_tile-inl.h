// The inner tile of the VNNI gather (gather_rows_q8.h: layout and
// arithmetic), shared by gather_rows_q8.cpp and the fused gated-row kernel
// (neuron_rows_q8.cpp, which computes the up rows of the same neurons).
// Internal to those kernels: included only by their .cpp files.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "core/aligned_buffer.h"
#include "kernels/byte_dot.h"
#include "kernels/group_prefetch.h"
#include "kernels/intrinsics_warnings.h"
#include "kernels/matmul_quant.h"
#include "kernels/quant_blocks.h"
#include "kernels/relaid_chunk.h"

FFN_INTRINSICS_WARNINGS_OFF

namespace ffn::relaid {

// Lane l of a chunk's dot products belongs to block (l >> 1) & 1 of the
// chunk (gather_rows_q8.h): the lanes 2, 3, 6, 7, ... take the second.
inline constexpr __mmask16 kSecondBlockLanes = 0xCCCC;

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

FFN_VNNI_TARGET inline void prepare_x(const float* x, int64_t n_tok, int64_t cols, PreparedX& p) {
  thread_local QuantizedActivations xa;  // the caller's: prepare_x runs before the workers start
  xa.quantize(x, n_tok, cols);
  p.cols = cols;
  p.nb = cols / kQuantBlock;
  p.nbp = (p.nb + 15) / 16 * 16;
  p.chunks = cols / kRelaidChunk;
  p.q.resize(static_cast<size_t>(n_tok * cols));
  p.scale.resize(static_cast<size_t>(n_tok * p.chunks * 16));
  p.sum.assign(static_cast<size_t>(n_tok * p.nbp), 0.0f);
  // Stored dword i = 4L + k of a chunk holds the weights of outputs
  // 16k + 4L .. +3, i.e. x's dword 4k + L.
  const __m512i swap = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int64_t c = 0; c < p.chunks; ++c) {
      const int64_t at = t * cols + c * kRelaidChunk, b = t * p.nb + 2 * c;
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
// Each chunk step also issues `later`'s prefetches (a group ahead): `share`
// lines of its group stream, or, for a tile of the whole group (NR == G),
// those along the rows, which end `end` bytes after row[r].
template <DType T, bool kVnni, int NR, int NT, int G>
FFN_VNNI_TARGET void gather_tile(const uint8_t* const* row, GroupPrefetch<G>& later, int64_t share, int64_t end,
                                 int valid, int64_t first, const PreparedX& p, int64_t t0, float* y,
                                 int64_t y_stride) {
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
      if constexpr (NR == G) prefetch_along<NR, relaid_chunk_bytes<T>()>(later, row, pos, end);  // the group's rows
      const __m512i pick = _mm512_add_epi32(_mm512_set1_epi32(int(2 * j)), lane_block);
      __m512i xq[NT];
      __m512 xs[NT];
      for (int t = 0; t < NT; ++t) {
        xq[t] = _mm512_load_si512(p.q.data() + (t0 + t) * p.cols + c * kRelaidChunk);
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

// The caller's PreparedX (prepared before the workers start; they only read it).
inline PreparedX& caller_prepared_x() {
  thread_local PreparedX p;
  return p;
}

}  // namespace ffn::relaid

FFN_INTRINSICS_WARNINGS_ON
