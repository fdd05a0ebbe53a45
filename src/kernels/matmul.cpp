// Matrix products against F32, F16 and BF16 weights with Google Highway
// (runtime dispatch over the ISAs this CPU has: SSE4, AVX2, AVX-512, ...).
//
// The micro-kernel (Tile, kernels/dense_tile-inl.h) computes a tile of NT
// tokens x NR weight rows with NT*NR vector accumulators: every weight
// vector loaded is used NT times and every activation vector NR times.
// Decode (one token) uses NT=1, NR=4, which reads the weights exactly once
// — the bandwidth-bound case. One template serves
// all three weight types: F16/BF16 are widened to fp32 in registers
// (LoadWeights), so half-precision weights cost half the memory traffic.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "kernels/weight_load-inl.h"
#include "kernels/dense_tile-inl.h"

#include <functional>
#include <vector>

#include <cstring>

#include "core/half.h"
#include "core/thread_pool.h"
#include "kernels/convert.h"
#include "kernels/group_prefetch.h"
#include "kernels/matmul.h"

HWY_BEFORE_NAMESPACE();
namespace ffn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Rows [r0, r1) of the output for all tokens.
template <int NT, typename WT>
void TokenBlock(const float* x, int64_t n_in, const WT* w, float* y, int64_t n_out, int64_t r0,
                int64_t r1) {
  // One token: one row at a time, so the weights stream sequentially (rows
  // are contiguous) and the hardware prefetcher never restarts; several
  // tokens: 4 rows per tile so each weight vector serves 4 x NT products.
  constexpr int NR = NT == 1 ? 1 : 4;
  int64_t r = r0;
  const WT* rows[NR];
  for (; r + NR <= r1; r += NR) {
    for (int k = 0; k < NR; ++k) rows[k] = w + (r + k) * n_in;
    Tile<NT, NR, WT>(x, n_in, rows, static_cast<GroupPrefetch<NR>*>(nullptr), y + r, n_out, NR);
  }
  for (; r < r1; ++r) {
    const WT* one[1] = {w + r * n_in};
    Tile<NT, 1, WT>(x, n_in, one, static_cast<GroupPrefetch<1>*>(nullptr), y + r, n_out, 1);
  }
}

// Rows per block of a batch: small enough that the block stays in L2 while
// every token group passes over it.
inline int64_t BatchRowBlock(int64_t n_in) { return std::max<int64_t>(4, (256 * 1024 / 4) / std::max<int64_t>(n_in, 1)); }

template <typename WT>
void MatmulRows(const float* x, int64_t n_tok, int64_t n_in, const WT* w, int64_t n_out,
                float* y, int64_t r0, int64_t r1) {
  // Tokens in groups of 4, weight rows in L2-sized blocks.
  const int64_t rows_per_block = n_tok == 1 ? (r1 - r0) : BatchRowBlock(n_in);
  for (int64_t rb = r0; rb < r1; rb += rows_per_block) {
    const int64_t re = std::min(r1, rb + rows_per_block);
    int64_t t = 0;
    for (; t + 4 <= n_tok; t += 4) TokenBlock<4>(x + t * n_in, n_in, w, y + t * n_out, n_out, rb, re);
    for (; t < n_tok; ++t) TokenBlock<1>(x + t * n_in, n_in, w, y + t * n_out, n_out, rb, re);
  }
}

// Listed rows (rows[i] of w, `pitch` elements apart) for all tokens, into
// y[t * y_stride + i]. The
// rows are scattered, so the hardware prefetcher restarts at each one: one
// token takes 8 rows per tile (8 streams in flight) and prefetches groups
// of 8 ahead as one stream (kernels/group_prefetch.h); batches take 4
// tokens x 4 rows per tile over L2-sized blocks of the list, as MatmulRows
// does.
template <typename WT>
void GatherRows(const float* x, int64_t n_tok, int64_t n_in, const WT* w, int64_t pitch, const int32_t* list,
                int64_t n, float* y, int64_t y_stride) {
  auto row = [&](int64_t i) { return w + int64_t(list[i]) * pitch; };
  const int64_t row_bytes = n_in * int64_t(sizeof(WT));
  auto over = [&](auto nt_tag, auto nr_tag, int64_t t, int64_t b, int64_t e) HWY_ATTR {
    constexpr int NT = decltype(nt_tag)::value, NR = decltype(nr_tag)::value;
    const int64_t ahead = NT == 1 ? prefetch_groups(NR * row_bytes) : 0;
    auto start_group = [&](GroupPrefetch<NR>& later, int64_t i) {
      const uint8_t* starts[NR];
      for (int r = 0; r < NR; ++r) starts[r] = reinterpret_cast<const uint8_t*>(row(std::min(e - 1, i + r)));
      later.start(starts, row_bytes);
    };
    prefetch_first_groups<NR>(ahead, b, e, start_group);
    const WT* rows[NR];
    int64_t i = b;
    for (; i + NR <= e; i += NR) {
      for (int r = 0; r < NR; ++r) rows[r] = row(i + r);
      GroupPrefetch<NR> later;
      if (ahead > 0 && i + ahead * NR < e) start_group(later, i + ahead * NR);
      Tile<NT, NR, WT>(x + t * n_in, n_in, rows, NT == 1 ? &later : nullptr, y + t * y_stride + i, y_stride, NR);
    }
    for (; i < e; ++i) {
      const WT* one[1] = {row(i)};
      Tile<NT, 1, WT>(x + t * n_in, n_in, one, static_cast<GroupPrefetch<1>*>(nullptr), y + t * y_stride + i,
                      y_stride, 1);
    }
  };
  using One = std::integral_constant<int, 1>;
  using Four = std::integral_constant<int, 4>;
  using Eight = std::integral_constant<int, 8>;
  const int64_t block = n_tok == 1 ? n : BatchRowBlock(n_in);
  for (int64_t b = 0; b < n; b += block) {
    const int64_t e = std::min(n, b + block);
    int64_t t = 0;
    for (; t + 4 <= n_tok; t += 4) over(Four(), Four(), t, b, e);
    for (; t < n_tok; ++t) over(One(), Eight(), t, b, e);
  }
}

// Calls f with w as the element type that `type` names (F16, BF16, else F32).
template <typename F>
void WithWeightType(DType type, const void* w, const F& f) {
  switch (type) {
    case DType::F16: return f(static_cast<const hwy::float16_t*>(w));
    case DType::BF16: return f(static_cast<const hwy::bfloat16_t*>(w));
    default: return f(static_cast<const float*>(w));
  }
}

// Type-erased entries (HWY_EXPORT needs one non-template function each).
void MatmulRowsDense(DType type, const float* x, int64_t n_tok, int64_t n_in, const void* w,
                     int64_t n_out, float* y, int64_t r0, int64_t r1) {
  WithWeightType(type, w, [&](const auto* tw) HWY_ATTR { MatmulRows(x, n_tok, n_in, tw, n_out, y, r0, r1); });
}

void GatherRowsDense(DType type, const float* x, int64_t n_tok, int64_t n_in, const void* w, uint64_t pitch,
                     const int32_t* list, int64_t n, float* y, int64_t y_stride) {
  WithWeightType(type, w, [&](const auto* tw) HWY_ATTR {
    const int64_t elements = pitch ? int64_t(pitch / sizeof(*tw)) : n_in;
    GatherRows(x, n_tok, n_in, tw, elements, list, n, y, y_stride);
  });
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

HWY_EXPORT(MatmulRowsDense);
HWY_EXPORT(GatherRowsDense);
HWY_EXPORT(Dot);
HWY_EXPORT(Axpy);

// Below this many multiply-adds a product runs on the calling thread: a
// parallel_for round trip costs about as much as ~50K multiply-adds.
constexpr int64_t kMinParallelMacs = 64 * 1024;

void for_each_row_chunk(int64_t n_tok, int64_t n_in, int64_t n_out, ThreadPool& pool,
                        const std::function<void(int64_t, int64_t)>& rows) {
  // Split output rows over threads in multiples of 4 (the tile height); tiny
  // products run on the calling thread, where waking workers costs more.
  if (n_tok * n_in * n_out < kMinParallelMacs || pool.size() == 1) {
    rows(0, n_out);
    return;
  }
  pool.parallel_for((n_out + 3) / 4, [&](int64_t b, int64_t e, int) { rows(b * 4, std::min(n_out, e * 4)); });
}

void matmul_dense_rows(DType type, const float* x, int64_t n_tok, int64_t n_in, const void* w,
                       float* y, int64_t y_stride, int64_t r0, int64_t r1) {
  HWY_DYNAMIC_DISPATCH(MatmulRowsDense)(type, x, n_tok, n_in, w, y_stride, y, r0, r1);
}

void matmul_dense_gather(DType type, const float* x, int64_t n_tok, int64_t n_in, const void* w, uint64_t pitch,
                         const int32_t* rows, int64_t n, float* y, int64_t y_stride) {
  HWY_DYNAMIC_DISPATCH(GatherRowsDense)(type, x, n_tok, n_in, w, pitch, rows, n, y, y_stride);
}

void matmul_dense(DType type, const float* x, int64_t n_tok, int64_t n_in, const void* w,
                  int64_t n_out, float* y, ThreadPool& pool) {
  for_each_row_chunk(n_tok, n_in, n_out, pool, [&](int64_t r0, int64_t r1) {
    matmul_dense_rows(type, x, n_tok, n_in, w, y, n_out, r0, r1);
  });
}

void matmul_f32(const float* x, int64_t n_tok, int64_t n_in, const float* w, int64_t n_out,
                float* y, ThreadPool& pool) {
  matmul_dense(DType::F32, x, n_tok, n_in, w, n_out, y, pool);
}

float dot_f32(const float* a, const float* b, int64_t n) { return HWY_DYNAMIC_DISPATCH(Dot)(a, b, n); }

void axpy_f32(float a, const float* x, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(Axpy)(a, x, y, n); }

void matmul_f32_reference(const float* x, int64_t n_tok, int64_t n_in, const float* w,
                          int64_t n_out, float* y) {
  matmul_reference(DType::F32, x, n_tok, n_in, reinterpret_cast<const uint8_t*>(w), n_out, y);
}

void matmul_reference(DType type, const float* x, int64_t n_tok, int64_t n_in, const uint8_t* w,
                      int64_t n_out, float* y) {
  std::vector<float> row(static_cast<size_t>(n_in));
  const uint64_t row_bytes = dtype_row_bytes(type, uint64_t(n_in));
  for (int64_t o = 0; o < n_out; ++o) {
    dequantize_row(type, w + o * row_bytes, row.data(), uint64_t(n_in));
    for (int64_t t = 0; t < n_tok; ++t) {
      double s = 0;
      for (int64_t i = 0; i < n_in; ++i) s += double(x[t * n_in + i]) * double(row[i]);
      y[t * n_out + o] = static_cast<float>(s);
    }
  }
}

}  // namespace ffn
#endif
