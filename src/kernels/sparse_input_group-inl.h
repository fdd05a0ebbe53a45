// The inner group of the VNNI input-sparse kernel (sparse_input_q8.h:
// layout and arithmetic), shared by sparse_input_q8.cpp and the fused
// gated-row kernel (neuron_rows_q8.cpp, which adds the down rows of the
// neurons whose up rows it has just read). Internal to those kernels:
// included only by their .cpp files.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/byte_dot.h"
#include "kernels/group_prefetch.h"
#include "kernels/intrinsics_warnings.h"
#include "kernels/matmul_quant.h"
#include "kernels/quant_blocks.h"
#include "kernels/relaid_chunk.h"

FFN_INTRINSICS_WARNINGS_OFF

namespace ffn::relaid {

// Byte offset of output c's chunk among a row's quant bytes (c a multiple of 64).
template <DType T>
constexpr int64_t chunk_offset(int64_t c) {
  return c / kRelaidChunk * relaid_chunk_bytes<T>();
}

// Four int8 lanes (low bytes of q0..q3) as one dword: the 4 activation bytes
// vpdpbusd multiplies with a row quadruple.
FFN_VNNI_TARGET inline __m512i pack_bytes4(__m512i q0, __m512i q1, __m512i q2, __m512i q3) {
  const __m512i low = _mm512_set1_epi32(0xff);
  __m512i d = _mm512_and_si512(q0, low);
  d = _mm512_or_si512(d, _mm512_slli_epi32(_mm512_and_si512(q1, low), 8));
  d = _mm512_or_si512(d, _mm512_slli_epi32(_mm512_and_si512(q2, low), 16));
  return _mm512_or_si512(d, _mm512_slli_epi32(q3, 24));
}

// The activations of one group of 4Q rows for blocks [0, nb) of a tile, per
// token t (row r's value x[t * x_stride + r]; rows >= valid are padding
// with value 0). Buffers are nbp (nb rounded up to 16) apart per token:
//   act[(Q t + h) * nbp + b]  the int8 q of rows 4h..4h+3 for block b,
//   scale[t * nbp + b]        A (the group's step for the block),
//   bias[t * nbp + b]        -= zero * A * sum_r q (the zero point's term).
template <int Q, int32_t kZero>
FFN_VNNI_TARGET void prepare_group(const uint16_t* const* row_scales, const float* x, int64_t x_stride, int valid,
                                   int64_t tokens, int64_t nb, int64_t nbp, int32_t* act, float* scale,
                                   float* bias) {
  constexpr int R = 4 * Q;
  for (int64_t t = 0; t < tokens; ++t) {
    __m512 xr[R];
    for (int r = 0; r < R; ++r) xr[r] = _mm512_set1_ps(r < valid ? x[t * x_stride + r] : 0.0f);
    for (int64_t b = 0; b < nb; b += 16) {
      const __mmask16 mask = nb - b >= 16 ? __mmask16(0xffff) : __mmask16((1u << (nb - b)) - 1);
      __m512 a[R];
      __m512 largest = _mm512_setzero_ps();
      for (int r = 0; r < R; ++r) {
        a[r] = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, row_scales[r] + b)), xr[r]);
        largest = _mm512_max_ps(largest, _mm512_abs_ps(a[r]));
      }
      const __m512 step = _mm512_mul_ps(largest, _mm512_set1_ps(1.0f / 127.0f));
      const __m512 inv = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(largest, _mm512_setzero_ps(), _CMP_GT_OQ),
                                             _mm512_set1_ps(127.0f), largest);
      __m512i sum = _mm512_setzero_si512();
      for (int h = 0; h < Q; ++h) {
        __m512i q[4];
        for (int i = 0; i < 4; ++i) {
          q[i] = _mm512_cvtps_epi32(_mm512_mul_ps(a[4 * h + i], inv));  // round to nearest even
          sum = _mm512_add_epi32(sum, q[i]);
        }
        _mm512_store_si512(act + (Q * t + h) * nbp + b, pack_bytes4(q[0], q[1], q[2], q[3]));
      }
      _mm512_store_ps(scale + t * nbp + b, step);
      float* bt = bias + t * nbp + b;
      _mm512_store_ps(bt, _mm512_fnmadd_ps(_mm512_mul_ps(step, _mm512_set1_ps(float(kZero))), _mm512_cvtepi32_ps(sum),
                                           _mm512_load_ps(bt)));
    }
  }
}

// The chunk at byte `off` of 4 rows, interleaved: vector k holds, per output
// of k's 16, the 4 rows' bytes as one dword (see the layout in the header).
template <DType T>
FFN_VNNI_TARGET inline void load_quad(const uint8_t* const* w, int64_t off, __m512i* u) {
  const __m512i r0 = load_relaid_chunk<T>(w[0] + off), r1 = load_relaid_chunk<T>(w[1] + off);
  const __m512i r2 = load_relaid_chunk<T>(w[2] + off), r3 = load_relaid_chunk<T>(w[3] + off);
  const __m512i t0 = _mm512_unpacklo_epi8(r0, r1), t1 = _mm512_unpackhi_epi8(r0, r1);
  const __m512i t2 = _mm512_unpacklo_epi8(r2, r3), t3 = _mm512_unpackhi_epi8(r2, r3);
  u[0] = _mm512_unpacklo_epi16(t0, t2);
  u[1] = _mm512_unpackhi_epi16(t0, t2);
  u[2] = _mm512_unpacklo_epi16(t1, t3);
  u[3] = _mm512_unpackhi_epi16(t1, t3);
}

// group_tile for kTokens tokens (0: `tokens`). A constant count lets the
// compiler keep the decoded rows in registers across the token loop: with
// a run-time count GCC spilled them to the stack and reloaded them per
// token (one token, rows in L2: 34 GB/s per core, 39 with the constant).
template <DType T, bool kVnni, int Q, int G, int kTokens>
FFN_VNNI_TARGET inline void group_tile_tokens(const uint8_t* const* w, GroupPrefetch<G>& later, int64_t share,
                                              int64_t width, int64_t n_tokens, const int32_t* act,
                                              const float* scale, int64_t nbp, float* y, int64_t y_stride) {
  const int64_t tokens = kTokens > 0 ? kTokens : n_tokens;
  for (int64_t c = 0; c < width; c += kRelaidChunk) {
    later.issue(share);
    prefetch_along<4 * Q, relaid_chunk_bytes<T>()>(later, w, chunk_offset<T>(c), chunk_offset<T>(width));
    using Dot = ByteDot<T, kVnni>;
    typename Dot::Weights u[Q][4];
    for (int h = 0; h < Q; ++h) {
      __m512i quad[4];
      load_quad<T>(w + 4 * h, chunk_offset<T>(c), quad);
      for (int k = 0; k < 4; ++k) u[h][k] = Dot::prepare(quad[k]);
    }
    const int64_t b = c / kQuantBlock;
    for (int64_t t = 0; t < tokens; ++t) {
      const int32_t* a = act + Q * t * nbp + b;
      const float* s = scale + t * nbp + b;
      float* yt = y + t * y_stride + c;
      for (int k = 0; k < 4; ++k) {
        const int half = k / 2;  // vectors 0, 1: block b; 2, 3: block b + 1
        __m512i acc = _mm512_setzero_si512();
        for (int h = 0; h < Q; ++h) acc = Dot::accumulate(acc, u[h][k], _mm512_set1_epi32(a[h * nbp + half]));
        _mm512_storeu_ps(yt + 16 * k, _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), _mm512_set1_ps(s[half]),
                                                      _mm512_loadu_ps(yt + 16 * k)));
      }
    }
  }
}

// One group's 4Q rows over a tile of `width` columns, into
// y[t * y_stride + c] (y at the tile's first column). w: the rows' quant
// bytes at the tile. Each chunk step also issues `later`'s prefetches:
// `share` lines of its group stream, or those along the rows (which, with
// that pattern, end where the tile does).
template <DType T, bool kVnni, int Q, int G>
FFN_VNNI_TARGET void group_tile(const uint8_t* const* w, GroupPrefetch<G>& later, int64_t share, int64_t width,
                                int64_t tokens, const int32_t* act, const float* scale, int64_t nbp, float* y,
                                int64_t y_stride) {
  if (tokens == 1) group_tile_tokens<T, kVnni, Q, G, 1>(w, later, share, width, 1, act, scale, nbp, y, y_stride);
  else group_tile_tokens<T, kVnni, Q, G, 0>(w, later, share, width, tokens, act, scale, nbp, y, y_stride);
}

// y[c] += term[c / 32] for c in [0, width), width a multiple of 32: the
// zero point's term that prepare_group gathered for each block of outputs.
FFN_VNNI_TARGET inline void add_block_terms(const float* term, int64_t width, float* y) {
  for (int64_t c = 0; c < width; c += kQuantBlock) {
    const __m512 d = _mm512_set1_ps(term[c / kQuantBlock]);
    _mm512_storeu_ps(y + c, _mm512_add_ps(_mm512_loadu_ps(y + c), d));
    _mm512_storeu_ps(y + c + 16, _mm512_add_ps(_mm512_loadu_ps(y + c + 16), d));
  }
}

}  // namespace ffn::relaid

FFN_INTRINSICS_WARNINGS_ON
