// Products of several tokens with packed Q8_0 / Q4_0 / BF16 weights on AMX
// tiles (kernels/amx_tiles.h), over a tile unit: HardwareTiles in
// kernels/amx_packed.cpp, the SDM's scalar definitions in the tests.
//
// The packed layouts (kernels/packed_quant.h, packed_bf16.h) were made for
// vpdpbusd / vdpbf16ps, four bytes of each of 16 rows per 64-byte vector;
// that is also the B operand layout of the tile instructions (K/4 rows of
// N = 16 columns of four bytes). The activations, one token per row, are
// the A tiles:
//  - Q8_0: B = the block's 8 vectors of weights, A = 16 tokens x the
//    block's 32 int8 activations, TDPBSSD. The packed weights are stored
//    + 128 (unsigned, for vpdpbusd), so each row tile is first re-laid as
//    signed bytes (once per call, for all token groups), and the int32
//    sums are exactly those of the AVX-512 tiles. Every block has its own
//    scales, so the int32 tile is stored after each block and scaled into
//    fp32 sums by AVX-512, in the AVX-512 tiles' order of operations: the
//    results are the same bits.
//  - Q4_0: the same; the re-laid B tiles hold the 4 nibble vectors split
//    into 8 byte vectors (low nibbles: weights 0-15, high: 16-31) minus 8.
//  - BF16: B = the block's 16 vectors of bf16 pairs, as stored, A = 16
//    tokens x 32 bf16 activations; TDPBF16PS accumulates in fp32 over all
//    blocks, and the C tile is stored once at the end.
// Q8_0/Q4_0 work on one C tile at a time, in a pipeline over three C
// tiles (see quant_tile); each BF16 pass computes up to 2 token groups x 2
// row tiles: C tiles 0-3 (C of group g and row tile h is 2g + h), A tiles
// 4-5, B tiles 6-7.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/amx_tiles.h"
#include "kernels/convert.h"
#include "kernels/intrinsics_warnings.h"
#include "kernels/matmul_quant.h"
#include "kernels/packed_bf16.h"
#include "kernels/packed_quant.h"
#include "kernels/weight_matrix.h"

namespace ffn {

// The AVX-512 half of the AMX kernels (every CPU with AMX has it).
#define FFN_AMX_HOST_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))

// Tokens per A tile (its rows), as QuantizedActivations::d_groups lays
// out the scales.
constexpr int64_t kAmxTokens = QuantizedActivations::kAmxGroupTokens;
static_assert(kAmxTokens == kTileMaxRows);

FFN_INTRINSICS_WARNINGS_OFF
template <class Tiles>
struct AmxPacked {
  // Output rows [r0, r1) (r0 a multiple of kPackRows) of packed Q8_0/Q4_0
  // w for n_tok tokens of int8 activations: y[t * y_stride + r].
  static void quant_rows(const WeightMatrix& w, const QuantizedActivations& xa, int64_t n_tok, float* y,
                         int64_t y_stride, int64_t r0, int64_t r1) {
    if (w.type == DType::Q8_0) quant_tiles<DType::Q8_0>(w, xa, n_tok, y, y_stride, r0, r1);
    else quant_tiles<DType::Q4_0>(w, xa, n_tok, y, y_stride, r0, r1);
  }

  // The same for packed BF16 w and bf16 activations x (n_tok x w.cols).
  static void bf16_rows(const WeightMatrix& w, const uint16_t* x, int64_t n_tok, float* y, int64_t y_stride,
                        int64_t r0, int64_t r1) {
    if (r0 >= r1 || n_tok <= 0) return;
    const uint64_t tile_bytes = packed_tile_bytes(DType::BF16, w.cols);
    TileConfig current;
    bool configured = false;
    // Row tiles outside, tokens inside: a pair of row tiles (<= 128 KB at
    // 2048 columns) stays in L2 while every token group passes over it.
    // The configuration changes only for a last, partial token group.
    for (int64_t r = r0; r < r1; r += 2 * kPackRows) {
      const int nw = r1 - r > kPackRows ? 2 : 1;
      Pass pass;
      for (int h = 0; h < nw; ++h) {
        pass.tile[h] = w.packed + uint64_t(r / kPackRows + h) * tile_bytes;
        pass.rows[h] = std::min(kPackRows, r1 - r - h * kPackRows);
        pass.y[h] = y + r + h * kPackRows;
      }
      pass.nb = w.cols / 32;
      pass.y_stride = y_stride;
      for (int64_t t = 0; t < n_tok; t += 2 * kAmxTokens) {
        pass.m[0] = std::min(kAmxTokens, n_tok - t);
        pass.m[1] = std::clamp<int64_t>(n_tok - t - kAmxTokens, 0, kAmxTokens);
        pass.t0 = t;
        const TileConfig wanted = bf16_config(pass.m);
        if (!configured || !(wanted == current)) {
          Tiles::configure(wanted);
          current = wanted;
          configured = true;
        }
        const bool two_groups = pass.m[1] > 0;
        if (two_groups && nw == 2) bf16_pass<2, 2>(pass, x, w.cols);
        else if (two_groups) bf16_pass<2, 1>(pass, x, w.cols);
        else if (nw == 2) bf16_pass<1, 2>(pass, x, w.cols);
        else bf16_pass<1, 1>(pass, x, w.cols);
      }
    }
    Tiles::release();
  }

 private:
  // ---- Q8_0 / Q4_0 ----------------------------------------------------
  // The unit of work is one C tile: a token group (up to 16 tokens) x a row
  // tile (16 rows), its fp32 sums in 16 zmm registers for the whole row.
  // Tiles: C 0-2, A 3-4, B 5-6.
  static TileConfig quant_config(int64_t m) {
    TileConfig c;
    for (int s = 0; s < 3; ++s) c.set(s, int(m), 64);  // C: m tokens x 16 int32 sums
    for (int s = 0; s < 2; ++s) {
      c.set(3 + s, int(m), 32);  // A: m tokens x the block's 32 int8 activations
      c.set(5 + s, 8, 64);       // B: the block's tile-block, 8 x 16 x 4 bytes
    }
    return c;
  }

  template <DType T>
  static void quant_tiles(const WeightMatrix& w, const QuantizedActivations& xa, int64_t n_tok, float* y,
                          int64_t y_stride, int64_t r0, int64_t r1) {
    if (r0 >= r1 || n_tok <= 0) return;
    const int64_t nb = w.cols / 32;
    const int64_t groups = (n_tok + kAmxTokens - 1) / kAmxTokens;
    thread_local AlignedVector<int8_t> weights;  // a row tile's B tiles, signed
    weights.resize(size_t(nb * kSignedBlockBytes));
    const uint64_t tile_bytes = packed_tile_bytes(T, w.cols);
    int64_t configured = 0;
    // Row tiles outside, tokens inside: a row tile's signed copy (88 KB at
    // 5632 columns) stays in L2 while every token group passes over it.
    for (int64_t r = r0; r < r1; r += kPackRows) {
      const uint8_t* tile = w.packed + uint64_t(r / kPackRows) * tile_bytes;
      signed_weights<T>(tile, nb, weights.data());
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t m = std::min(kAmxTokens, n_tok - g * kAmxTokens);
        if (m != configured) Tiles::configure(quant_config(m));
        configured = m;
        quant_tile<T>(tile, weights.data(), xa.q.data() + g * kAmxTokens * nb * 32, nb,
                      xa.d_groups.data() + g * nb * kAmxTokens, m, y + g * kAmxTokens * y_stride + r, y_stride,
                      std::min(kPackRows, r1 - r));
      }
    }
    Tiles::release();
  }

  static constexpr int64_t kSignedBlockBytes = 8 * 64;  // one B tile: 8 x 16 rows x 4 bytes

  // A row tile's weights as signed bytes, one B tile per block, for
  // TDPBSSD: Q8_0's stored w + 128 back to w; Q4_0's 4 nibble vectors split
  // into 8 byte vectors (vector k's low nibbles are weights 4k..4k+3 of
  // each row, its high nibbles weights 16+4k..16+4k+3) minus the zero
  // point 8. Done once per row tile for all its token groups, so the
  // products need no zero-point term: the int32 sums are the AVX-512
  // tiles' exactly.
  template <DType T>
  FFN_AMX_HOST_TARGET static void signed_weights(const uint8_t* tile, int64_t nb, int8_t* out) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* q = tile + b * packed_block_bytes(T) + kPackedScaleBytes;
      int8_t* o = out + b * kSignedBlockBytes;
      if constexpr (T == DType::Q8_0) {
        const __m512i bias = _mm512_set1_epi8(int8_t(0x80));
        for (int k = 0; k < 8; ++k)
          _mm512_store_si512(o + 64 * k, _mm512_xor_si512(_mm512_loadu_si512(q + 64 * k), bias));
      } else {
        const __m512i low4 = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
        for (int k = 0; k < 4; ++k) {
          const __m512i v = _mm512_loadu_si512(q + 64 * k);
          _mm512_store_si512(o + 64 * k, _mm512_sub_epi8(_mm512_and_si512(v, low4), eight));
          _mm512_store_si512(o + 64 * (k + 4),
                             _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), low4), eight));
        }
      }
    }
  }

  // Block b's products into C tile C, from A and B tile set S (tiles
  // 3 + S and 5 + S).
  template <int C, int S>
  FFN_AMX_HOST_TARGET static void start_block(const int8_t* weights, const int8_t* x, int64_t x_stride, int64_t b) {
    Tiles::template load<3 + S>(x + b * 32, x_stride);
    Tiles::template load<5 + S>(weights + b * kSignedBlockBytes, 64);
    Tiles::template zero<C>();
    Tiles::template dot_s8s8<C, 3 + S, 5 + S>();
  }

  // acc[t][row] += c[t][row] * d_w[row] * d_x: the AVX-512 tiles'
  // operations in their order, so the results are the same bits.
  template <DType T>
  FFN_AMX_HOST_TARGET __attribute__((always_inline)) static void scale_block(const uint8_t* tile, int64_t b,
                                                                             const int32_t (*c)[16],
                                                                             const float* dx, __m512* acc) {
    const __m512 dw = _mm512_cvtph_ps(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tile + b * packed_block_bytes(T))));
#pragma GCC unroll 16
    for (int t = 0; t < kAmxTokens; ++t)
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[t])), _mm512_mul_ps(dw, _mm512_set1_ps(dx[t])),
                               acc[t]);
  }

  // Step b of a C tile (C = b % 3, S = b % 2): store block b's sums, start
  // block b + 2 on the A/B set it frees, scale block b's sums.
  template <DType T, int C, int S>
  FFN_AMX_HOST_TARGET __attribute__((always_inline)) static void step(int64_t b, const uint8_t* tile,
                                                                      const int8_t* weights, const int8_t* x,
                                                                      int64_t x_stride, int64_t nb, const float* dx,
                                                                      int32_t (*c)[kAmxTokens][16], __m512* acc) {
    Tiles::template store<C>(c[S], 64);
    if (b + 2 < nb) start_block<(C + 2) % 3, S>(weights, x, x_stride, b + 2);
    scale_block<T>(tile, b, c[S], dx + b * kAmxTokens, acc);
  }

  // One C tile: m tokens (x: their int8 activations, row after row) x the
  // row tile `tile` (weights: its signed B tiles), all nb blocks; rows of
  // its outputs stored to y. Blocks take C tiles 0, 1, 2 and A/B sets 0, 1
  // in turn, so that the tile unit has the next two blocks queued while
  // AVX-512 scales one.
  template <DType T>
  FFN_AMX_HOST_TARGET static void quant_tile(const uint8_t* tile, const int8_t* weights, const int8_t* x, int64_t nb,
                                             const float* dx, int64_t m, float* y, int64_t y_stride, int64_t rows) {
    // Zeroed: the scaling loop reads all 16 rows, the tiles store m.
    alignas(64) int32_t c[2][kAmxTokens][16] = {};
    const int64_t x_stride = nb * 32;  // bytes from one token's int8 activations to the next's
    __m512 acc[kAmxTokens];
#pragma GCC unroll 16
    for (int t = 0; t < kAmxTokens; ++t) acc[t] = _mm512_setzero_ps();
    start_block<0, 0>(weights, x, x_stride, 0);
    if (nb > 1) start_block<1, 1>(weights, x, x_stride, 1);
    for (int64_t b = 0; b < nb; b += 6) {
      step<T, 0, 0>(b, tile, weights, x, x_stride, nb, dx, c, acc);
      if (b + 1 >= nb) break;
      step<T, 1, 1>(b + 1, tile, weights, x, x_stride, nb, dx, c, acc);
      if (b + 2 >= nb) break;
      step<T, 2, 0>(b + 2, tile, weights, x, x_stride, nb, dx, c, acc);
      if (b + 3 >= nb) break;
      step<T, 0, 1>(b + 3, tile, weights, x, x_stride, nb, dx, c, acc);
      if (b + 4 >= nb) break;
      step<T, 1, 0>(b + 4, tile, weights, x, x_stride, nb, dx, c, acc);
      if (b + 5 >= nb) break;
      step<T, 2, 1>(b + 5, tile, weights, x, x_stride, nb, dx, c, acc);
    }
    const __mmask16 keep = rows >= kPackRows ? __mmask16(0xffff) : __mmask16((1u << rows) - 1);
    // (Constant indices keep acc in registers.)
#pragma GCC unroll 16
    for (int t = 0; t < kAmxTokens; ++t)
      if (t < m) _mm512_mask_storeu_ps(y + t * y_stride, keep, acc[t]);
  }

  // ---- BF16 ---------------------------------------------------------------
  // The tile shapes of a pass over m[0] (and m[1]) tokens: A tiles of
  // m[g] rows x 32 bf16 pairs, B tiles of one tile-block, C tiles m[g] x
  // 16 fp32 sums.
  static TileConfig bf16_config(const int64_t m[2]) {
    TileConfig c;
    for (int g = 0; g < 2; ++g) {
      if (m[g] == 0) continue;
      c.set(4 + g, int(m[g]), 64);
      c.set(2 * g, int(m[g]), 64);
      c.set(2 * g + 1, int(m[g]), 64);
    }
    c.set(6, 16, 64);
    c.set(7, 16, 64);
    return c;
  }

  // One pass: tokens [t0, t0 + m[0] + m[1]) x row tiles tile[0..1], whose
  // outputs start at y[h] (rows[h] of each stored).
  struct Pass {
    const uint8_t* tile[2] = {};
    int64_t rows[2] = {};
    float* y[2] = {};
    int64_t m[2] = {};
    int64_t t0 = 0, nb = 0, y_stride = 0;
  };

  FFN_AMX_HOST_TARGET static void store_outputs(const Pass& p, int g, int h, const float (*acc)[16]) {
    const __mmask16 keep = p.rows[h] >= kPackRows ? __mmask16(0xffff) : __mmask16((1u << p.rows[h]) - 1);
    for (int64_t t = 0; t < p.m[g]; ++t)
      _mm512_mask_storeu_ps(p.y[h] + (p.t0 + g * kAmxTokens + t) * p.y_stride, keep, _mm512_load_ps(acc[t]));
  }

  template <int NG, int NW>
  FFN_AMX_HOST_TARGET static void bf16_pass(const Pass& p, const uint16_t* x, int64_t cols) {
    const int64_t x_stride = cols * 2;  // bytes from one token's activations to the next's
    const uint16_t* x0 = x + p.t0 * cols;
    Tiles::template zero<0>();
    if constexpr (NW == 2) Tiles::template zero<1>();
    if constexpr (NG == 2) {
      Tiles::template zero<2>();
      if constexpr (NW == 2) Tiles::template zero<3>();
    }
    for (int64_t b = 0; b < p.nb; ++b) {
      Tiles::template load<4>(x0 + b * 32, x_stride);
      if constexpr (NG == 2) Tiles::template load<5>(x0 + kAmxTokens * cols + b * 32, x_stride);
      const int64_t at = b * packed_block_bytes(DType::BF16);
      Tiles::template load<6>(p.tile[0] + at, 64);
      if constexpr (NW == 2) Tiles::template load<7>(p.tile[1] + at, 64);
      Tiles::template dot_bf16<0, 4, 6>();
      if constexpr (NW == 2) Tiles::template dot_bf16<1, 4, 7>();
      if constexpr (NG == 2) {
        Tiles::template dot_bf16<2, 5, 6>();
        if constexpr (NW == 2) Tiles::template dot_bf16<3, 5, 7>();
      }
    }
    alignas(64) float c[kAmxTokens][16];
    Tiles::template store<0>(c, 64);
    store_outputs(p, 0, 0, c);
    if constexpr (NW == 2) {
      Tiles::template store<1>(c, 64);
      store_outputs(p, 0, 1, c);
    }
    if constexpr (NG == 2) {
      Tiles::template store<2>(c, 64);
      store_outputs(p, 1, 0, c);
      if constexpr (NW == 2) {
        Tiles::template store<3>(c, 64);
        store_outputs(p, 1, 1, c);
      }
    }
  }
};
FFN_INTRINSICS_WARNINGS_ON

// The check a process runs before it uses the tiles (kernels/amx_packed.h):
// AmxPacked<Tiles> against the AVX-512 tiles on random weights of each
// packed type, 40 rows (the last row tile 8 rows) x 96 columns, 37 tokens
// (the last token group 5). Q8_0/Q4_0 must give the same bits; BF16 must
// agree within 1e-3 of sum |x| |w| (the two units round differently).
// Requires cpu_has_avx512bw() and cpu_has_avx512_bf16().
template <class Tiles>
bool amx_agrees_with_avx512() {
  constexpr int64_t kRows = 40, kCols = 96, kTokens = 37;
  std::mt19937 rng(20261202);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> wf(size_t(kRows * kCols)), x(size_t(kTokens * kCols));
  for (float& v : wf) v = uniform(rng);
  for (float& v : x) v = uniform(rng);
  QuantizedActivations xa;
  xa.quantize(x.data(), kTokens, kCols, QuantPath::Portable);
  xa.bf16.resize(x.size());
  round_to_bf16(x.data(), int64_t(x.size()), xa.bf16.data());
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::BF16}) {
    WeightMatrix w{.type = type, .rows = kRows, .cols = kCols};
    std::vector<uint8_t> bytes(w.bytes());
    for (int64_t r = 0; r < kRows; ++r)
      encode_row(type, wf.data() + r * kCols, bytes.data() + r * w.row_bytes(), uint64_t(kCols));
    w.data = bytes.data();
    pack_row_tiles(w, nullptr);
    if (w.packed == nullptr) return false;
    std::vector<float> want(size_t(kTokens * kRows)), got(want.size(), NAN);
    if (type == DType::BF16) {
      matmul_packed_bf16_rows(w, xa.bf16.data(), kTokens, want.data(), kRows, 0, kRows);
      AmxPacked<Tiles>::bf16_rows(w, xa.bf16.data(), kTokens, got.data(), kRows, 0, kRows);
    } else {
      matmul_packed_rows(w, xa, kTokens, want.data(), kRows, 0, kRows, QuantPath::Portable);
      AmxPacked<Tiles>::quant_rows(w, xa, kTokens, got.data(), kRows, 0, kRows);
    }
    for (int64_t t = 0; t < kTokens; ++t)
      for (int64_t r = 0; r < kRows; ++r) {
        const size_t i = size_t(t * kRows + r);
        if (type != DType::BF16) {
          if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) return false;
          continue;
        }
        double l1 = 0;
        for (int64_t c = 0; c < kCols; ++c) l1 += std::abs(double(x[size_t(t * kCols + c)]) * wf[size_t(r * kCols + c)]);
        if (!(std::abs(double(got[i]) - want[i]) <= 1e-3 * l1)) return false;
      }
  }
  return true;
}

}  // namespace ffn
