#include "kernels/matmul_quant.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "kernels/convert.h"
#include "kernels/intrinsics_warnings.h"
#include "kernels/matmul.h"
#include "kernels/quant_blocks.h"
#include "kernels/sparse_matmul.h"

namespace ffn {

namespace {


// The integer dot product of one weight block with one activation block,
// split in two steps so that a tile decodes each weight block once for all
// its tokens: prepare(block), then dot(prepared, x, x_offset8).
//
// vpdpbusd multiplies unsigned by signed bytes.
//  Q8_0: the weights enter as |w| and the activations take w's sign:
//        |w| * (sign(w) x) = w x.
//  Q4_0: the nibbles n (0..15) enter unsigned and the "- 8" is folded into
//        the accumulator's start value: offset8 = -8 * sum(x) per lane.
struct PreparedQ8 {
  __m256i abs, sign;
};
FFN_VNNI_TARGET inline PreparedQ8 prepare(const BlockQ8_0* b) {
  const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs));
  return {_mm256_abs_epi8(w), w};
}
FFN_VNNI_TARGET inline __m256i dot(const PreparedQ8& w, __m256i x, const int32_t*) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), w.abs, _mm256_sign_epi8(x, w.sign));
}

struct PreparedQ4 {
  __m256i nibbles;
};
FFN_VNNI_TARGET inline PreparedQ4 prepare(const BlockQ4_0* b) {
  // byte j: weight j in the low nibble, weight j+16 in the high nibble
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs));
  return {_mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f))};
}
FFN_VNNI_TARGET inline __m256i dot(const PreparedQ4& w, __m256i x, const int32_t* offset8) {
  return _mm256_dpbusd_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(offset8)), w.nibbles, x);
}

template <typename Block>
FFN_VNNI_TARGET inline float block_scale(const Block* b) {
  return _cvtsh_ss(b->d);
}

FFN_VNNI_TARGET inline float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// NT tokens x NR rows. vpdpbusd multiplies unsigned by signed bytes, so the
// weights enter as |w| and the activations take w's sign: |w| * sign(w) x.
//
// w[r] is row r's first block: the rows need not be adjacent (the gather
// kernel passes listed rows). When `ahead` is set, ahead[r] + b is
// prefetched along with block b (the gather kernel's next rows).
template <typename Block, int NT, int NR>
FFN_VNNI_TARGET void tile_vnni(const Block* const* w, int64_t nb, const QuantizedActivations& xa, int64_t t0,
                               float* y, int64_t y_stride, const Block* const* ahead) {
  // Two accumulator sets (even / odd blocks) so that consecutive blocks'
  // FMAs do not wait on each other's latency.
  __m256 acc[2][NT][NR];
  for (int k = 0; k < 2; ++k)
    for (int t = 0; t < NT; ++t)
      for (int r = 0; r < NR; ++r) acc[k][t][r] = _mm256_setzero_ps();
  auto block = [&](int64_t b, __m256(&a)[NT][NR]) FFN_VNNI_TARGET {
    decltype(prepare(w[0])) prepared[NR];
    float dw[NR];
    for (int r = 0; r < NR; ++r) {
      prepared[r] = prepare(w[r] + b);
      dw[r] = block_scale(w[r] + b);
    }
    for (int t = 0; t < NT; ++t) {
      const int64_t xb = (t0 + t) * nb + b;
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xa.q.data() + xb * 32));
      const float dx = xa.d[xb];
      for (int r = 0; r < NR; ++r) {
        const __m256i d = dot(prepared[r], xv, xa.offset8.data() + xb * 8);
        a[t][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(dw[r] * dx), a[t][r]);
      }
    }
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    if (ahead)
      for (int r = 0; r < NR; ++r) _mm_prefetch(reinterpret_cast<const char*>(ahead[r] + b), _MM_HINT_T0);
    block(b, acc[0]);
    block(b + 1, acc[1]);
  }
  if (b < nb) block(b, acc[0]);
  for (int t = 0; t < NT; ++t)
    for (int r = 0; r < NR; ++r) y[t * y_stride + r] = hsum(_mm256_add_ps(acc[0][t][r], acc[1][t][r]));
}

// Rows i in [0, n) of a sequence of weight rows, row(i) pointing at row i's
// first block, for all tokens: y[t * y_stride + i]. `gathered`: the rows are
// scattered (a row list), not adjacent.
template <typename Block, typename RowAt>
void rows_vnni(const RowAt& row, int64_t n, bool gathered, const QuantizedActivations& xa, int64_t n_tok,
               int64_t nb, float* y, int64_t y_stride) {
  int64_t t = 0;
  auto over_rows = [&](auto nt_tag, auto nr_tag) {
    // Several tokens: 4 rows per tile, so each weight block is decoded once
    // for 4 x NT products. One token, adjacent rows: one row at a time, so
    // the weights are read as one sequential stream; 4 interleaved rows of
    // ~2 KB each would be 4 short streams that the hardware prefetcher
    // keeps restarting (measured on one core, Q8_0 2048x5632: 10.4 GB/s
    // with 4 rows, 26.5 GB/s with 1). Scattered rows break the stream at
    // every gap anyway: there, 8 rows at a time with the next 8 prefetched
    // alongside keep several streams in flight (BM_GatherRows/8/50, Q8_0,
    // alternating builds: 17.0 -> 18.4 GB/s on 1 thread, 32.0 -> 33.4 on 2,
    // against 4 rows; CATS decode +5-7%).
    constexpr int NT = decltype(nt_tag)::value, NR = decltype(nr_tag)::value;
    int64_t i = 0;
    const Block* w[NR];
    const Block* ahead[NR];
    for (; i + NR <= n; i += NR) {
      for (int r = 0; r < NR; ++r) {
        w[r] = row(i + r);
        ahead[r] = row(std::min(n - 1, i + NR + r));
      }
      tile_vnni<Block, NT, NR>(w, nb, xa, t, y + t * y_stride + i, y_stride, gathered ? ahead : nullptr);
    }
    for (; i < n; ++i) {
      const Block* w1[1] = {row(i)};
      tile_vnni<Block, NT, 1>(w1, nb, xa, t, y + t * y_stride + i, y_stride, nullptr);
    }
  };
  using One = std::integral_constant<int, 1>;
  using Four = std::integral_constant<int, 4>;
  using Eight = std::integral_constant<int, 8>;
  for (; t + 4 <= n_tok; t += 4) over_rows(Four(), Four());
  for (; t < n_tok; ++t) {
    if (gathered) over_rows(One(), Eight());
    else over_rows(One(), One());
  }
}

// One 32-value block of activations: q = round(x / d) with d = max|x| / 127,
// and offset8 (see QuantizedActivations). x rows are contiguous across a
// token's blocks, so block i of token t is x + (t * nb + i) * 32.
void quantize_block_scalar(const float* xb, int8_t* qb, float* d, int32_t* off) {
  float amax = 0;
  for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(xb[j]));
  const float scale = amax / 127.0f, inv = scale != 0.0f ? 1.0f / scale : 0.0f;
  *d = scale;
  for (int j = 0; j < kQuantBlock; ++j) qb[j] = static_cast<int8_t>(std::lrintf(xb[j] * inv));
  for (int k = 0; k < 8; ++k) off[k] = -8 * (qb[4 * k] + qb[4 * k + 1] + qb[4 * k + 2] + qb[4 * k + 3]);
}

// The same operations 16 lanes at a time: the scalar loop costs ~9 us per
// 2048 values, and decode quantizes several vectors per layer.
FFN_INTRINSICS_WARNINGS_OFF
FFN_VNNI_TARGET void quantize_block_avx512(const float* xb, int8_t* qb, float* d, int32_t* off) {
  const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
  const float scale = amax / 127.0f, inv = scale != 0.0f ? 1.0f / scale : 0.0f;
  *d = scale;
  const __m512 vinv = _mm512_set1_ps(inv);
  // cvtps_epi32 rounds to nearest even (the default MXCSR mode), as lrintf.
  const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, vinv)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, vinv));
  const __m256i q = _mm256_set_m128i(_mm512_cvtsepi32_epi8(q1), _mm512_cvtsepi32_epi8(q0));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qb), q);
  // Sums of 4 consecutive signed bytes, times -8: 1 (unsigned) x q (signed)
  // in pairs, then the pairs in pairs (no VNNI needed: this also serves the
  // packed tiles of AVX-512BW CPUs without it).
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
  const __m256i sums = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(off), _mm256_mullo_epi32(sums, _mm256_set1_epi32(-8)));
}
FFN_INTRINSICS_WARNINGS_ON

// x quantized into the calling thread's buffer, reused across calls. (Named
// through a reference by the callers: inside their lambdas, a thread_local
// name would mean each worker's own.)
const QuantizedActivations& quantized_activations(const float* x, int64_t n_tok, int64_t n_in) {
  thread_local QuantizedActivations caller_buffer;
  caller_buffer.quantize(x, n_tok, n_in);
  return caller_buffer;
}

}  // namespace

void QuantizedActivations::quantize(const float* x, int64_t n_tok, int64_t n_in, QuantPath path) {
  const int64_t nb = n_in / kQuantBlock;
  q.resize(static_cast<size_t>(n_tok * n_in));
  d.resize(static_cast<size_t>(n_tok * nb));
  offset8.resize(static_cast<size_t>(n_tok * nb * 8));
  sum.resize(static_cast<size_t>(n_tok * nb));
  const bool fast = path == QuantPath::Vnni || (path == QuantPath::Auto && cpu_has_avx512bw());
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t i = t * nb + b;
      int32_t* off = offset8.data() + i * 8;
      if (fast) {
        quantize_block_avx512(x + i * kQuantBlock, q.data() + i * kQuantBlock, &d[size_t(i)], off);
      } else {
        quantize_block_scalar(x + i * kQuantBlock, q.data() + i * kQuantBlock, &d[size_t(i)], off);
      }
      // offset8 lanes are -8 times the sums of 4 values each: exact.
      sum[size_t(i)] = -(off[0] + off[1] + off[2] + off[3] + off[4] + off[5] + off[6] + off[7]) / 8;
    }
  // Once here rather than in every call of the tile kernels (each thread
  // and each matrix that reads these activations).
  const int64_t g_tok = kAmxGroupTokens;
  d_groups.assign(static_cast<size_t>((n_tok + g_tok - 1) / g_tok * nb * g_tok), 0.0f);
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t b = 0; b < nb; ++b)
      d_groups[static_cast<size_t>(((t / g_tok) * nb + b) * g_tok + t % g_tok)] = d[static_cast<size_t>(t * nb + b)];
}

bool cpu_has_vnni() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
                          __builtin_cpu_supports("fma");  // (every AVX-512 CPU has F16C)
  return has;
}

bool cpu_has_avx512bw() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
  return has;
}

void matmul_quant(DType type, const float* x, int64_t n_tok, int64_t n_in, const uint8_t* w,
                  int64_t n_out, float* y, ThreadPool& pool, QuantPath path) {
  if (path == QuantPath::Auto) path = cpu_has_vnni() ? QuantPath::Vnni : QuantPath::Portable;
  if (path == QuantPath::Portable) {
    for_each_row_chunk(n_tok, n_in, n_out, pool, [&](int64_t r0, int64_t r1) {
      matmul_quant_rows_portable(type, x, n_tok, n_in, w, y, n_out, r0, r1);
    });
    return;
  }
  const QuantizedActivations& xa = quantized_activations(x, n_tok, n_in);
  for_each_row_chunk(n_tok, n_in, n_out, pool, [&xa, &w, &y, type, x, n_tok, n_in, n_out](int64_t r0, int64_t r1) {
    matmul_quant_rows(type, &xa, x, n_tok, n_in, w, y, n_out, r0, r1);
  });
}

void matmul_quant_rows(DType type, const QuantizedActivations* xa, const float* x, int64_t n_tok, int64_t n_in,
                       const uint8_t* w, float* y, int64_t y_stride, int64_t r0, int64_t r1) {
  if (!xa) {
    matmul_quant_rows_portable(type, x, n_tok, n_in, w, y, y_stride, r0, r1);
    return;
  }
  const int64_t nb = n_in / kQuantBlock;
  auto rows = [&](auto* blocks) {
    using Block = std::remove_const_t<std::remove_pointer_t<decltype(blocks)>>;
    rows_vnni<Block>([&](int64_t i) { return blocks + (r0 + i) * nb; }, r1 - r0, false, *xa, n_tok, nb, y + r0,
                     y_stride);
  };
  if (type == DType::Q8_0) rows(reinterpret_cast<const BlockQ8_0*>(w));
  else rows(reinterpret_cast<const BlockQ4_0*>(w));
}

void matmul_quant_gather_rows(DType type, const float* x, int64_t n_tok, int64_t n_in, const uint8_t* w,
                              const int32_t* rows, int64_t n_rows, float* y, ThreadPool& pool, QuantPath path) {
  if (path == QuantPath::Auto) path = cpu_has_vnni() ? QuantPath::Vnni : QuantPath::Portable;
  const uint64_t row_bytes = dtype_row_bytes(type, uint64_t(n_in));
  if (path == QuantPath::Portable) {
    // A run of consecutive rows r..r+len is matmul_quant on that slice of
    // w, written to columns i..i+len of y (row stride n_rows).
    for_each_row_run(w, row_bytes, n_tok, n_in, rows, n_rows, pool, [&](int64_t i, int64_t r, int64_t len) {
      matmul_quant_rows_portable(type, x, n_tok, n_in, w + uint64_t(r) * row_bytes, y + i, n_rows, 0, len);
    });
    return;
  }
  // The listed rows straight through the VNNI tiles: each thread takes an
  // equal piece of the list.
  const QuantizedActivations& xa = quantized_activations(x, n_tok, n_in);
  const int64_t nb = n_in / kQuantBlock;
  auto piece = [&](int64_t b, int64_t e) {
    if (b == e) return;
    // A piece of adjacent rows (e.g. all of them) is read as matmul_quant
    // reads its rows.
    const bool adjacent = rows[e - 1] - rows[b] == e - 1 - b;
    auto run = [&](auto* blocks) {
      using Block = std::remove_const_t<std::remove_pointer_t<decltype(blocks)>>;
      rows_vnni<Block>([&](int64_t i) { return blocks + int64_t(rows[b + i]) * nb; }, e - b, !adjacent, xa, n_tok,
                       nb, y + b, n_rows);
    };
    if (type == DType::Q8_0) run(reinterpret_cast<const BlockQ8_0*>(w));
    else run(reinterpret_cast<const BlockQ4_0*>(w));
  };
  for_each_list_piece(n_rows, n_tok * n_in, pool, piece);
}

}  // namespace ffn
