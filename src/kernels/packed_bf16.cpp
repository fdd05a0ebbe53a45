#include "kernels/packed_bf16.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/half.h"
#include "kernels/intrinsics_warnings.h"
#include "kernels/packed_quant.h"

namespace ffn {

namespace {

// (One target for both types, so that one tile loop serves them: F16 tiles
// are packed only where AVX-512 BF16 is present too, see can_pack.)
#define FFN_BF16_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16")))

constexpr int64_t kColsPerBlock = 32;
constexpr int64_t kPairs = kColsPerBlock / 2;            // vectors per tile-block
constexpr int64_t kBlockBytes = kPairs * kPackRows * 4;  // 1024
static_assert(kBlockBytes == packed_block_bytes(DType::BF16));

// The scalar definition: round to nearest even, NaN stays a (quiet) NaN,
// and denormal inputs become zero, as vcvtneps2bf16 treats them.
uint16_t round_one(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7f800000u) == 0 && (bits & 0x007fffffu) != 0) return uint16_t((bits >> 16) & 0x8000);
  return f32_to_bf16(f);
}

FFN_INTRINSICS_WARNINGS_OFF
FFN_BF16_TARGET void round_avx512(const float* x, int64_t n, uint16_t* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
  for (; i < n; ++i) out[i] = round_one(x[i]);
}

// How a vector of 16 rows' weight pairs meets the activations; the tile
// loop below is the same for both 16-bit float types.
//  - Bf16Pairs: vdpbf16ps, activations rounded to bf16, one broadcast pair
//    serves all 16 rows.
//  - F16Pairs: the pairs' halves widened to fp32 (vpmovdw + vcvtph2ps,
//    exact), then an FMA with each fp32 activation of the pair; activations
//    stay fp32. Widening once per vector serves every token of a tile.
struct Bf16Pairs {
  using X = uint16_t;
  using Weights = __m512bh;
  FFN_BF16_TARGET static Weights load(const uint8_t* p) { return (__m512bh)_mm512_loadu_si512(p); }
  FFN_BF16_TARGET static __m512 accumulate(__m512 acc, Weights w, const X* pair) {
    int32_t bits;
    std::memcpy(&bits, pair, 4);
    return _mm512_dpbf16_ps(acc, w, (__m512bh)_mm512_set1_epi32(bits));
  }
};
struct F16Pairs {
  using X = float;
  struct Weights {
    __m512 first, second;  // weights 2k and 2k + 1 of the 16 rows
  };
  FFN_BF16_TARGET static Weights load(const uint8_t* p) {
    const __m512i v = _mm512_loadu_si512(p);
    return {_mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)), _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16)))};
  }
  FFN_BF16_TARGET static __m512 accumulate(__m512 acc, const Weights& w, const X* pair) {
    return _mm512_fmadd_ps(w.second, _mm512_set1_ps(pair[1]), _mm512_fmadd_ps(w.first, _mm512_set1_ps(pair[0]), acc));
  }
};

// NT tokens x one tile of 16 rows; `rows` of them are stored. kSets
// independent accumulators per token hide the multiply-adds' latency when
// NT is small.
template <class Pairs, int NT>
FFN_BF16_TARGET void tile_pairs(const uint8_t* tile, int64_t nb, const typename Pairs::X* x, int64_t x_stride,
                                float* y, int64_t y_stride, int64_t rows, int64_t prefetch) {
  constexpr int kSets = NT == 1 ? 4 : 2;
  __m512 acc[kSets][NT];
  for (int s = 0; s < kSets; ++s)
    for (int t = 0; t < NT; ++t) acc[s][t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = tile + b * kBlockBytes;
    if constexpr (NT == 1)  // (a prefetch past the buffer's end never faults)
      if (prefetch > 0)
        for (int64_t o = 0; o < kBlockBytes; o += 64)
          _mm_prefetch(reinterpret_cast<const char*>(p + prefetch + o), _MM_HINT_T0);
    // Fully unrolled, so that acc[k % kSets] names registers, not memory.
#pragma GCC unroll 16
    for (int k = 0; k < kPairs; ++k) {
      const auto wk = Pairs::load(p + 64 * k);
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t)
        acc[k % kSets][t] = Pairs::accumulate(acc[k % kSets][t], wk, x + t * x_stride + b * kColsPerBlock + 2 * k);
    }
  }
  const __mmask16 keep = rows >= kPackRows ? __mmask16(0xffff) : __mmask16((1u << rows) - 1);
  for (int t = 0; t < NT; ++t) {
    __m512 sum = acc[0][t];
    for (int s = 1; s < kSets; ++s) sum = _mm512_add_ps(sum, acc[s][t]);
    _mm512_mask_storeu_ps(y + t * y_stride, keep, sum);
  }
}

// Output rows [r0, r1) for n_tok tokens: tiles of 8, 4 and 1 tokens.
template <class Pairs>
void rows_pairs(const WeightMatrix& w, const typename Pairs::X* x, int64_t n_tok, float* y, int64_t y_stride,
                int64_t r0, int64_t r1) {
  const int64_t nb = w.cols / kColsPerBlock;
  const uint64_t tile_bytes = packed_bf16_tile_bytes(w.cols);
  const int64_t prefetch = packed_prefetch_bytes();
  for (int64_t r = r0; r < r1; r += kPackRows) {
    const uint8_t* tile = w.packed + uint64_t(r / kPackRows) * tile_bytes;
    const int64_t rows = std::min(kPackRows, r1 - r);
    int64_t t = 0;
    auto x_at = [&](int64_t t) { return x + t * w.cols; };
    auto y_at = [&](int64_t t) { return y + t * y_stride + r; };
    for (; t + 8 <= n_tok; t += 8) tile_pairs<Pairs, 8>(tile, nb, x_at(t), w.cols, y_at(t), y_stride, rows, 0);
    for (; t + 4 <= n_tok; t += 4) tile_pairs<Pairs, 4>(tile, nb, x_at(t), w.cols, y_at(t), y_stride, rows, 0);
    for (; t < n_tok; ++t) tile_pairs<Pairs, 1>(tile, nb, x_at(t), w.cols, y_at(t), y_stride, rows, prefetch);
  }
}
FFN_INTRINSICS_WARNINGS_ON

}  // namespace

bool cpu_has_avx512_bf16() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16") &&
                          __builtin_cpu_supports("fma");
  return has;
}

uint64_t packed_bf16_tile_bytes(int64_t cols) { return uint64_t(cols / kColsPerBlock) * uint64_t(kBlockBytes); }

void pack_bf16_tiles(const WeightMatrix& w, uint8_t* out, int64_t i0, int64_t i1) {
  const int64_t nb = w.cols / kColsPerBlock;
  for (int64_t i = i0; i < i1; ++i) {
    uint8_t* tile = out + uint64_t(i) * packed_bf16_tile_bytes(w.cols);
    const int64_t rows = std::min(kPackRows, w.rows - i * kPackRows);
    if (rows < kPackRows) std::memset(tile, 0, size_t(packed_bf16_tile_bytes(w.cols)));  // padding rows: zero
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* row = w.row(i * kPackRows + r);
      // Pair k of block b (4 bytes) -> vector k of tile-block b, slot r.
      for (int64_t b = 0; b < nb; ++b)
        for (int64_t k = 0; k < kPairs; ++k)
          std::memcpy(tile + b * kBlockBytes + k * 64 + 4 * r, row + (b * kColsPerBlock + 2 * k) * 2, 4);
    }
  }
}

void round_to_bf16(const float* x, int64_t n, uint16_t* out) {
  if (cpu_has_avx512_bf16()) {
    round_avx512(x, n, out);
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = round_one(x[i]);
}

void matmul_packed_bf16_rows(const WeightMatrix& w, const uint16_t* x, int64_t n_tok, float* y, int64_t y_stride,
                             int64_t r0, int64_t r1) {
  rows_pairs<Bf16Pairs>(w, x, n_tok, y, y_stride, r0, r1);
}

void matmul_packed_f16_rows(const WeightMatrix& w, const float* x, int64_t n_tok, float* y, int64_t y_stride,
                            int64_t r0, int64_t r1) {
  rows_pairs<F16Pairs>(w, x, n_tok, y, y_stride, r0, r1);
}

}  // namespace ffn
