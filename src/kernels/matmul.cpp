// fp32 matrix products with Google Highway (runtime dispatch over the ISAs
// this CPU has: SSE4, AVX2, AVX-512, ...).
//
// The micro-kernel computes a tile of NT tokens x NR weight rows with NT*NR
// vector accumulators: every weight vector loaded is used NT times and every
// activation vector NR times. Decode (one token) uses NT=1, NR=4, which reads
// the weights exactly once — the bandwidth-bound case.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include "core/thread_pool.h"
#include "kernels/matmul.h"

HWY_BEFORE_NAMESPACE();
namespace ffn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <int NT, int NR>
void Tile(const float* HWY_RESTRICT x, int64_t n_in, const float* HWY_RESTRICT w,
          float* HWY_RESTRICT y, int64_t y_stride, int64_t n_rows) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  using V = hn::Vec<decltype(d)>;
  V acc[NT][NR];
  for (int t = 0; t < NT; ++t)
    for (int r = 0; r < NR; ++r) acc[t][r] = hn::Zero(d);
  int64_t i = 0;
  for (; i + N <= n_in; i += N) {
    V wv[NR];
    for (int r = 0; r < NR; ++r) wv[r] = hn::LoadU(d, w + r * n_in + i);
    for (int t = 0; t < NT; ++t) {
      const V xv = hn::LoadU(d, x + t * n_in + i);
      for (int r = 0; r < NR; ++r) acc[t][r] = hn::MulAdd(xv, wv[r], acc[t][r]);
    }
  }
  for (int t = 0; t < NT; ++t)
    for (int r = 0; r < NR && r < n_rows; ++r) {
      float s = hn::GetLane(hn::SumOfLanes(d, acc[t][r]));
      for (int64_t j = i; j < n_in; ++j) s += x[t * n_in + j] * w[r * n_in + j];
      y[t * y_stride + r] = s;
    }
}

// Rows [r0, r1) of the output for all tokens.
template <int NT>
void TokenBlock(const float* x, int64_t n_in, const float* w, float* y, int64_t n_out, int64_t r0,
                int64_t r1) {
  constexpr int NR = 4;
  int64_t r = r0;
  for (; r + NR <= r1; r += NR) Tile<NT, NR>(x, n_in, w + r * n_in, y + r, n_out, NR);
  for (; r < r1; ++r) Tile<NT, 1>(x, n_in, w + r * n_in, y + r, n_out, 1);
}

void MatmulRows(const float* x, int64_t n_tok, int64_t n_in, const float* w, int64_t n_out,
                float* y, int64_t r0, int64_t r1) {
  // Tokens in groups of 4, weight rows in blocks small enough that a block
  // stays in L2 while every token group passes over it.
  const int64_t rows_per_block =
      n_tok == 1 ? (r1 - r0) : std::max<int64_t>(4, (256 * 1024 / 4) / std::max<int64_t>(n_in, 1));
  for (int64_t rb = r0; rb < r1; rb += rows_per_block) {
    const int64_t re = std::min(r1, rb + rows_per_block);
    int64_t t = 0;
    for (; t + 4 <= n_tok; t += 4) TokenBlock<4>(x + t * n_in, n_in, w, y + t * n_out, n_out, rb, re);
    for (; t < n_tok; ++t) TokenBlock<1>(x + t * n_in, n_in, w, y + t * n_out, n_out, rb, re);
  }
}

float Dot(const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  auto acc0 = hn::Zero(d), acc1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    acc0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), acc0);
    acc1 = hn::MulAdd(hn::LoadU(d, a + i + N), hn::LoadU(d, b + i + N), acc1);
  }
  for (; i + N <= n; i += N) acc0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), acc0);
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0, acc1)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void Axpy(float alpha, const float* HWY_RESTRICT x, float* HWY_RESTRICT y, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto va = hn::Set(d, alpha);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::MulAdd(va, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  for (; i < n; ++i) y[i] += alpha * x[i];
}

}  // namespace HWY_NAMESPACE
}  // namespace ffn
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ffn {

HWY_EXPORT(MatmulRows);
HWY_EXPORT(Dot);
HWY_EXPORT(Axpy);

// Below this many multiply-adds a product runs on the calling thread: a
// parallel_for round trip costs about as much as ~50K multiply-adds.
constexpr int64_t kMinParallelMacs = 64 * 1024;

void matmul_f32(const float* x, int64_t n_tok, int64_t n_in, const float* w, int64_t n_out,
                float* y, ThreadPool& pool) {
  // Split output rows over threads in multiples of 4 (the tile height); tiny
  // products run on the calling thread, where waking workers costs more.
  const int64_t work = n_tok * n_in * n_out;
  if (work < kMinParallelMacs || pool.size() == 1) {
    HWY_DYNAMIC_DISPATCH(MatmulRows)(x, n_tok, n_in, w, n_out, y, 0, n_out);
    return;
  }
  const int64_t n_chunks = (n_out + 3) / 4;
  pool.parallel_for(n_chunks, [&](int64_t b, int64_t e, int) {
    HWY_DYNAMIC_DISPATCH(MatmulRows)(x, n_tok, n_in, w, n_out, y, b * 4, std::min(n_out, e * 4));
  });
}

float dot_f32(const float* a, const float* b, int64_t n) { return HWY_DYNAMIC_DISPATCH(Dot)(a, b, n); }

void axpy_f32(float a, const float* x, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(Axpy)(a, x, y, n); }

void matmul_f32_reference(const float* x, int64_t n_tok, int64_t n_in, const float* w,
                          int64_t n_out, float* y) {
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t o = 0; o < n_out; ++o) {
      double s = 0;
      for (int64_t i = 0; i < n_in; ++i) s += double(x[t * n_in + i]) * double(w[o * n_in + i]);
      y[t * n_out + o] = static_cast<float>(s);
    }
}

}  // namespace ffn
#endif
