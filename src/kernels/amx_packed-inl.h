// Products of several tokens with packed Q8_0 / Q4_0 / BF16 weights on AMX
// tiles (kernels/amx_tiles.h), over a tile unit: HardwareTiles in
// kernels/amx_packed.cpp, the SDM's scalar definitions in the tests.
//
// The packed layouts (kernels/packed_quant.h, packed_bf16.h) were made for
// vpdpbusd / vdpbf16ps, four bytes of each of 16 rows per 64-byte vector;
// that is also the B operand layout of the tile instructions (K/4 rows of
// N = 16 columns of four bytes). So a tile-block loads as a B tile as it
// is, and the activations, one token per row, are the A tiles:
//  - Q8_0: B = the block's 8 vectors of weights + 128 (unsigned), A = 16
//    tokens x the block's 32 int8 activations; TDPBSUD gives each token's
//    integer dot with each of the 16 rows, minus 128 * sum(x) as in the
//    AVX-512 tiles (QuantizedActivations::sum). Every block has its own
//    scales, so the int32 tile is stored after each block and scaled into
//    fp32 sums by AVX-512, in the AVX-512 tiles' order of operations: the
//    results are the same bits.
//  - Q4_0: the same after splitting the 4 nibble vectors into 8 byte
//    vectors (low nibbles: weights 0-15, high: 16-31; zero point 8).
//  - BF16: B = the block's 16 vectors of bf16 pairs, A = 16 tokens x 32
//    bf16 activations; TDPBF16PS accumulates in fp32 over all blocks, and
//    the C tile is stored once at the end.
// Each pass computes up to 2 token groups x 2 row tiles: C tiles 0-3 (C of
// group g and row tile h is 2g + h), A tiles 4-5, B tiles 6-7.
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

constexpr int64_t kAmxTokens = 16;  // tokens per A tile (its rows)

FFN_INTRINSICS_WARNINGS_OFF
template <class Tiles>
struct AmxPacked {
  // Output rows [r0, r1) (r0 a multiple of kPackRows) of packed Q8_0/Q4_0
  // w for n_tok tokens of int8 activations: y[t * y_stride + r].
  static void quant_rows(const WeightMatrix& w, const QuantizedActivations& xa, int64_t n_tok, float* y,
                         int64_t y_stride, int64_t r0, int64_t r1) {
    if (w.type == DType::Q8_0) rows<DType::Q8_0>(w, &xa, nullptr, n_tok, y, y_stride, r0, r1);
    else rows<DType::Q4_0>(w, &xa, nullptr, n_tok, y, y_stride, r0, r1);
  }

  // The same for packed BF16 w and bf16 activations x (n_tok x w.cols).
  static void bf16_rows(const WeightMatrix& w, const uint16_t* x, int64_t n_tok, float* y, int64_t y_stride,
                        int64_t r0, int64_t r1) {
    rows<DType::BF16>(w, nullptr, x, n_tok, y, y_stride, r0, r1);
  }

 private:
  // The tile shapes of a pass over m[0] (and m[1]) tokens: A tiles of
  // m[g] rows x 32 activations, B tiles of one tile-block, C tiles m[g] x
  // 16 four-byte sums.
  static TileConfig config(DType type, const int64_t m[2]) {
    TileConfig c;
    const int a_bytes = type == DType::BF16 ? 64 : 32;
    const int b_rows = type == DType::BF16 ? 16 : 8;
    for (int g = 0; g < 2; ++g) {
      if (m[g] == 0) continue;
      c.set(4 + g, int(m[g]), a_bytes);
      c.set(2 * g, int(m[g]), 64);
      c.set(2 * g + 1, int(m[g]), 64);
    }
    c.set(6, b_rows, 64);
    c.set(7, b_rows, 64);
    return c;
  }

  template <DType T>
  static void rows(const WeightMatrix& w, const QuantizedActivations* xa, const uint16_t* x16, int64_t n_tok,
                   float* y, int64_t y_stride, int64_t r0, int64_t r1) {
    if (r0 >= r1 || n_tok <= 0) return;
    const uint64_t tile_bytes = packed_tile_bytes(T, w.cols);
    TileConfig current;
    bool configured = false;
    // Row tiles outside, tokens inside: a pair of row tiles (<= 190 KB at
    // 5632 Q8_0 columns) stays in L2 while every token group passes over
    // it. The configuration changes only for a last, partial token group.
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
        const TileConfig wanted = config(T, pass.m);
        if (!configured || !(wanted == current)) {
          Tiles::configure(wanted);
          current = wanted;
          configured = true;
        }
        const bool two_groups = pass.m[1] > 0;
        if constexpr (T == DType::BF16) {
          if (two_groups && nw == 2) bf16_pass<2, 2>(pass, x16, w.cols);
          else if (two_groups) bf16_pass<2, 1>(pass, x16, w.cols);
          else if (nw == 2) bf16_pass<1, 2>(pass, x16, w.cols);
          else bf16_pass<1, 1>(pass, x16, w.cols);
        } else {
          if (two_groups && nw == 2) quant_pass<T, 2, 2>(pass, *xa);
          else if (two_groups) quant_pass<T, 2, 1>(pass, *xa);
          else if (nw == 2) quant_pass<T, 1, 2>(pass, *xa);
          else quant_pass<T, 1, 1>(pass, *xa);
        }
      }
    }
    Tiles::release();
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

  // C tile (g, h) is stored to c, then c[token][row] (an int32 block sum)
  // becomes acc[g][h][token][row] += (c - z * sum(x)) * d_w[row] * d_x.
  template <DType T>
  FFN_AMX_HOST_TARGET static void scale_block(const Pass& p, const QuantizedActivations& xa, int64_t b, int g,
                                              int h, const int32_t (*c)[16], float (*acc)[16]) {
    constexpr int32_t kZero = T == DType::Q8_0 ? 128 : 8;
    const uint8_t* block = p.tile[h] + b * packed_block_bytes(T);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block)));
    for (int64_t t = 0; t < p.m[g]; ++t) {
      const size_t xb = size_t((p.t0 + g * kAmxTokens + t) * p.nb + b);
      const __m512i s = _mm512_sub_epi32(_mm512_load_si512(c[t]), _mm512_set1_epi32(kZero * xa.sum[xb]));
      const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(xa.d[xb]));
      _mm512_store_ps(acc[t], _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, _mm512_load_ps(acc[t])));
    }
  }

  // Q4_0's 4 nibble vectors as the 8 byte vectors of a B tile: vector k's
  // low nibbles are weights 4k..4k+3 of each row, its high nibbles weights
  // 16+4k..16+4k+3.
  FFN_AMX_HOST_TARGET static void split_nibbles(const uint8_t* q, uint8_t (*out)[64]) {
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    for (int k = 0; k < 4; ++k) {
      const __m512i v = _mm512_loadu_si512(q + 64 * k);
      _mm512_store_si512(out[k], _mm512_and_si512(v, low4));
      _mm512_store_si512(out[k + 4], _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
    }
  }

  FFN_AMX_HOST_TARGET static void store_outputs(const Pass& p, int g, int h, const float (*acc)[16]) {
    const __mmask16 keep = p.rows[h] >= kPackRows ? __mmask16(0xffff) : __mmask16((1u << p.rows[h]) - 1);
    for (int64_t t = 0; t < p.m[g]; ++t)
      _mm512_mask_storeu_ps(p.y[h] + (p.t0 + g * kAmxTokens + t) * p.y_stride, keep, _mm512_load_ps(acc[t]));
  }

  template <DType T, int NG, int NW>
  FFN_AMX_HOST_TARGET static void quant_pass(const Pass& p, const QuantizedActivations& xa) {
    alignas(64) float acc[2][2][kAmxTokens][16] = {};
    alignas(64) int32_t c[kAmxTokens][16];
    alignas(64) uint8_t nibbles[2][8][64];
    const int64_t x_stride = p.nb * 32;  // bytes from one token's int8 activations to the next's
    const int8_t* x0 = xa.q.data() + p.t0 * x_stride;
    for (int64_t b = 0; b < p.nb; ++b) {
      Tiles::template load<4>(x0 + b * 32, x_stride);
      if constexpr (NG == 2) Tiles::template load<5>(x0 + kAmxTokens * x_stride + b * 32, x_stride);
      for (int h = 0; h < NW; ++h) {
        const uint8_t* q = p.tile[h] + b * packed_block_bytes(T) + kPackedScaleBytes;
        if constexpr (T == DType::Q4_0) split_nibbles(q, nibbles[h]);
        const void* b_tile = T == DType::Q4_0 ? static_cast<const void*>(nibbles[h]) : q;
        if (h == 0) Tiles::template load<6>(b_tile, 64);
        else Tiles::template load<7>(b_tile, 64);
      }
      // All products first, so that the tile unit computes the later ones
      // while AVX-512 scales the first. (Q4_0's nibbles are split again for
      // each token pair: 8 vector operations per block and row tile, against
      // ~64 for scaling the pair's sums; a split copy of the row tiles
      // would cost up to 176 KB of L2 per pair of tiles instead.)
      Tiles::template zero<0>();
      Tiles::template dot_s8u8<0, 4, 6>();
      if constexpr (NW == 2) {
        Tiles::template zero<1>();
        Tiles::template dot_s8u8<1, 4, 7>();
      }
      if constexpr (NG == 2) {
        Tiles::template zero<2>();
        Tiles::template dot_s8u8<2, 5, 6>();
        if constexpr (NW == 2) {
          Tiles::template zero<3>();
          Tiles::template dot_s8u8<3, 5, 7>();
        }
      }
      Tiles::template store<0>(c, 64);
      scale_block<T>(p, xa, b, 0, 0, c, acc[0][0]);
      if constexpr (NW == 2) {
        Tiles::template store<1>(c, 64);
        scale_block<T>(p, xa, b, 0, 1, c, acc[0][1]);
      }
      if constexpr (NG == 2) {
        Tiles::template store<2>(c, 64);
        scale_block<T>(p, xa, b, 1, 0, c, acc[1][0]);
        if constexpr (NW == 2) {
          Tiles::template store<3>(c, 64);
          scale_block<T>(p, xa, b, 1, 1, c, acc[1][1]);
        }
      }
    }
    for (int g = 0; g < NG; ++g)
      for (int h = 0; h < NW; ++h) store_outputs(p, g, h, acc[g][h]);
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
