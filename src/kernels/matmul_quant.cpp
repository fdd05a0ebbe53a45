#include "kernels/matmul_quant.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/quant_blocks.h"

namespace ffn {

namespace {

// Activations of n_tok tokens quantized per 32-block: q[t][i] int8 and
// d[t][b] with x ~= d * q (d = max|x| / 127).
struct QuantizedActivations {
  AlignedVector<int8_t> q;
  std::vector<float> d;

  void quantize(const float* x, int64_t n_tok, int64_t n_in) {
    const int64_t nb = n_in / kQuantBlock;
    q.resize(static_cast<size_t>(n_tok * n_in));
    d.resize(static_cast<size_t>(n_tok * nb));
    for (int64_t t = 0; t < n_tok; ++t)
      for (int64_t b = 0; b < nb; ++b) {
        const float* xb = x + t * n_in + b * kQuantBlock;
        float amax = 0;
        for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float scale = amax / 127.0f, inv = scale != 0.0f ? 1.0f / scale : 0.0f;
        d[t * nb + b] = scale;
        int8_t* qb = q.data() + t * n_in + b * kQuantBlock;
        for (int j = 0; j < kQuantBlock; ++j) qb[j] = static_cast<int8_t>(std::lrintf(xb[j] * inv));
      }
  }
};

#define FFN_VNNI_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

// A block's 32 weights as signed bytes, and its scale.
FFN_VNNI_TARGET inline __m256i block_weights(const BlockQ8_0* b) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qs));
}
FFN_VNNI_TARGET inline __m256i block_weights(const BlockQ4_0* b) {
  // byte j: weight j in the low nibble, weight j+16 in the high nibble
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs));
  const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0f));
  return _mm256_sub_epi8(nib, _mm256_set1_epi8(8));
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
template <typename Block, int NT, int NR>
FFN_VNNI_TARGET void tile_vnni(const Block* w, int64_t nb, const QuantizedActivations& xa, int64_t t0,
                               int64_t n_in, float* y, int64_t y_stride) {
  __m256 acc[NT][NR];
  for (int t = 0; t < NT; ++t)
    for (int r = 0; r < NR; ++r) acc[t][r] = _mm256_setzero_ps();
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t b = 0; b < nb; ++b) {
    __m256i w_abs[NR], w_sgn[NR];
    float dw[NR];
    for (int r = 0; r < NR; ++r) {
      const Block* blk = w + r * nb + b;
      w_sgn[r] = block_weights(blk);
      w_abs[r] = _mm256_abs_epi8(w_sgn[r]);
      dw[r] = block_scale(blk);
    }
    for (int t = 0; t < NT; ++t) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xa.q.data() + (t0 + t) * n_in + b * 32));
      const float dx = xa.d[(t0 + t) * nb + b];
      for (int r = 0; r < NR; ++r) {
        const __m256i dot = _mm256_dpbusd_epi32(zero, w_abs[r], _mm256_sign_epi8(xv, w_sgn[r]));
        acc[t][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw[r] * dx), acc[t][r]);
      }
    }
  }
  for (int t = 0; t < NT; ++t)
    for (int r = 0; r < NR; ++r) y[t * y_stride + r] = hsum(acc[t][r]);
}

template <typename Block>
void rows_vnni(const uint8_t* w, const QuantizedActivations& xa, int64_t n_tok, int64_t n_in, float* y,
               int64_t n_out, int64_t r0, int64_t r1) {
  const int64_t nb = n_in / kQuantBlock;
  const Block* blocks = reinterpret_cast<const Block*>(w);
  constexpr int NR = 4;
  int64_t t = 0;
  auto over_rows = [&](auto nt_tag) {
    constexpr int NT = decltype(nt_tag)::value;
    int64_t r = r0;
    for (; r + NR <= r1; r += NR)
      tile_vnni<Block, NT, NR>(blocks + r * nb, nb, xa, t, n_in, y + t * n_out + r, n_out);
    for (; r < r1; ++r) tile_vnni<Block, NT, 1>(blocks + r * nb, nb, xa, t, n_in, y + t * n_out + r, n_out);
  };
  for (; t + 4 <= n_tok; t += 4) over_rows(std::integral_constant<int, 4>());
  for (; t < n_tok; ++t) over_rows(std::integral_constant<int, 1>());
}

// Portable: decode 4 rows at a time to fp32, then the Highway fp32 kernel.
void rows_portable(DType type, const float* x, int64_t n_tok, int64_t n_in, const uint8_t* w, float* y,
                   int64_t n_out, int64_t r0, int64_t r1) {
  const uint64_t row_bytes = dtype_row_bytes(type, uint64_t(n_in));
  AlignedVector<float> rows(static_cast<size_t>(4 * n_in));
  for (int64_t r = r0; r < r1; r += 4) {
    const int64_t n = std::min<int64_t>(4, r1 - r);
    for (int64_t k = 0; k < n; ++k)
      dequantize_row(type, w + (r + k) * row_bytes, rows.data() + k * n_in, uint64_t(n_in));
    // Output columns r..r+n of every token, from the decoded 4-row matrix.
    matmul_dense_rows(DType::F32, x, n_tok, n_in, rows.data(), y + r, n_out, 0, n);
  }
}

}  // namespace

bool cpu_has_vnni() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
                          __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
  return has;
}

void matmul_quant(DType type, const float* x, int64_t n_tok, int64_t n_in, const uint8_t* w,
                  int64_t n_out, float* y, ThreadPool& pool, QuantPath path) {
  if (path == QuantPath::Auto) path = cpu_has_vnni() ? QuantPath::Vnni : QuantPath::Portable;
  if (path == QuantPath::Portable) {
    for_each_row_chunk(n_tok, n_in, n_out, pool, [&](int64_t r0, int64_t r1) {
      rows_portable(type, x, n_tok, n_in, w, y, n_out, r0, r1);
    });
    return;
  }
  // The caller's buffer, reused across calls. (Named through a reference:
  // inside the lambda, a thread_local name would mean each worker's own.)
  thread_local QuantizedActivations caller_buffer;
  QuantizedActivations& xa = caller_buffer;
  xa.quantize(x, n_tok, n_in);
  for_each_row_chunk(n_tok, n_in, n_out, pool, [&xa, &w, &y, type, n_tok, n_in, n_out](int64_t r0, int64_t r1) {
    if (type == DType::Q8_0) rows_vnni<BlockQ8_0>(w, xa, n_tok, n_in, y, n_out, r0, r1);
    else rows_vnni<BlockQ4_0>(w, xa, n_tok, n_in, y, n_out, r0, r1);
  });
}

}  // namespace ffn
