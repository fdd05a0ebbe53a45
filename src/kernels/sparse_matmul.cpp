// Sparse matrix products for activation sparsity (see sparse_matmul.h;
// CHESS, Spark Transformer, TEAL, CATS).
//
// matmul_sparse_input is the Highway kernel here. A call covers a range of
// output columns (the y chunk stays in L1) and streams the active rows of
// W^T over it, NR rows at a time: each y vector is loaded and stored once per
// NR rows, and every weight is decoded in registers right before its FMA —
// F16/BF16 widened, Q8_0 int8 -> int32 -> fp32, Q4_0 nibbles -> int32 -> fp32
// with the block scale folded into the multiplier (d_block * x_k) — so the
// weight bytes cross the memory bus once and nothing else does.
//
// matmul_gather_rows needs no new inner loop: a run of consecutive listed
// rows is a small dense product, which matmul_dense_rows does; Q8_0/Q4_0
// rows go through the quantized row kernels (matmul_quant_gather_rows).
//
// Bandwidth (one core of the AMD EPYC VM this was written on, 5632 x 2048,
// DRAM-resident): scattered rows break the hardware prefetchers' streams at
// every gap, so even a plain read of 50% of the rows, one row after the
// other, reaches only ~50-60% of the sequential read bandwidth. Reading
// several rows at once with software prefetch ahead recovers most of it,
// which is what matmul_sparse_input and the VNNI gather do;
// matmul_dense_rows reads one row at a time (see bench_kernels.cpp).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/sparse_matmul.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/weight_load-inl.h"
#include "kernels/quant_block-inl.h"
#include "kernels/dense_rows-inl.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/half.h"
#include "core/stream_split.h"
#include "core/thread_pool.h"
#include "kernels/convert.h"
#include "kernels/group_prefetch.h"
#include "kernels/matmul.h"
#include "kernels/matmul_quant.h"
#include "kernels/quant_blocks.h"
#include "kernels/sparse_input_q8.h"
#include "kernels/sparse_matmul.h"
#include "kernels/weight_matrix.h"

HWY_BEFORE_NAMESPACE();
namespace ffn {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The same for NR quantized rows of nb blocks (n = 32 * nb columns).
template <int NR, bool kOne, typename Block>
HWY_INLINE void QuantRows(const Block* const* w, const Block* const* next, GroupPrefetch<NR>& later,
                          const float* HWY_RESTRICT x, int64_t x_stride, int64_t n_tok, float* HWY_RESTRICT y,
                          int64_t y_stride, int64_t nb) {
  const D d;
  constexpr int64_t kAhead = kPrefetchBytes / int64_t(sizeof(Block));
  // Prefetch every kEvery blocks (at most 64 bytes apart, so every line is
  // touched once or twice) rather than every block: fewer instructions in a
  // loop that is close to compute-bound.
  constexpr int64_t kEvery = std::max<int64_t>(1, 64 / int64_t(sizeof(Block)));
  const int64_t share = later.share((nb + kEvery - 1) / kEvery);
  V xs[NR];
  for (int r = 0; r < NR; ++r) xs[r] = hn::Set(d, kOne ? x[r * x_stride] : 1.0f);
  for (int64_t b = 0; b < nb; ++b) {
    if (b % kEvery == 0) {
      if constexpr (kOne) later.issue(share);
      else
        for (int r = 0; r < NR; ++r) PrefetchRead(Ahead(w[r], next[r], b, kAhead, nb));
    }
    V wv[NR][kBlockVecs];
    for (int r = 0; r < NR; ++r) DecodeBlock(d, w[r] + b, wv[r]);
    float* yb = y + b * kQuantBlock;
    if constexpr (kOne) {
      V s[NR];  // d_block * x_k: one multiply per block and row
      for (int r = 0; r < NR; ++r) s[r] = hn::Mul(BlockScale(d, w[r] + b), xs[r]);
      for (int v = 0; v < kBlockVecs; ++v) {
        V acc = hn::LoadU(d, yb + v * kLanes);
        for (int r = 0; r < NR; ++r) acc = hn::MulAdd(wv[r][v], s[r], acc);
        hn::StoreU(acc, d, yb + v * kLanes);
      }
    } else {
      for (int r = 0; r < NR; ++r) {
        const V s = BlockScale(d, w[r] + b);
        for (int v = 0; v < kBlockVecs; ++v) wv[r][v] = hn::Mul(wv[r][v], s);
      }
      for (int64_t t = 0; t < n_tok; ++t) {
        float* yt = yb + t * y_stride;
        for (int v = 0; v < kBlockVecs; ++v) {
          V acc = hn::LoadU(d, yt + v * kLanes);
          for (int r = 0; r < NR; ++r) acc = hn::MulAdd(wv[r][v], hn::Set(d, x[r * x_stride + t]), acc);
          hn::StoreU(acc, d, yt + v * kLanes);
        }
      }
    }
  }
}

template <typename Fmt>
constexpr bool kIsBlock = std::is_same_v<Fmt, BlockQ8_0> || std::is_same_v<Fmt, BlockQ4_0>;

// Several tokens: blocks of up to kTokenBlock tokens, and column tiles of
// kTileFloats / tokens accumulators (>= 64 columns), so that a tile's
// accumulators stay in L1 while the active rows pass over it.
constexpr int64_t kTokenBlock = 64;
constexpr int64_t kTileFloats = 4096;

// Output columns [c0, c1) of every token: y = sum over the active rows
// (row_bytes each, `pitch` bytes apart), NR rows at a time. c0 is a multiple of the block size.
template <typename Fmt>
void SparseInputColumns(const uint8_t* wt, uint64_t row_bytes, uint64_t pitch, const float* x, int64_t n_tok,
                        const int32_t* active, int64_t n_active, float* y, int64_t n_out, int64_t c0,
                        int64_t c1) {
  constexpr int64_t kPer = kIsBlock<Fmt> ? kQuantBlock : 1;  // columns per Fmt
  // Eight rows per pass over y: each y vector is loaded and stored once per
  // 8 rows, and 8 rows stream at once (more concurrent DRAM streams: F16 and
  // BF16 at 50% density ran ~5-15% faster than with 4). Two where a
  // quantized block's decoded vectors would not fit the register file (AVX2
  // and narrower).
  constexpr int NR = !kIsBlock<Fmt> || kBlockVecs <= 2 ? 8 : 2;
  // Rows k..k+R of the active list over columns [ct, ct + width), into acc
  // (row stride acc_stride); xk: their activations, x_stride apart.
  auto rows = [&](int64_t ct, int64_t width, const float* xk, int64_t x_stride, int64_t tokens, float* acc,
                  int64_t acc_stride) {
    const int64_t n = width / kPer;  // columns or blocks
    auto row = [&](int64_t k) {
      k = std::min(k, n_active - 1);  // "next rows" past the end: prefetch the last again
      return reinterpret_cast<const Fmt*>(wt + uint64_t(active[k]) * pitch) + ct / kPer;
    };
    // One token: the stream over the group of NR list entries from k
    // (kernels/group_prefetch.h; the whole range is one tile, rows whole).
    const int64_t ahead = tokens == 1 ? prefetch_groups(NR * int64_t(row_bytes)) : 0;
    auto start_group = [&](GroupPrefetch<NR>& later, int64_t k) {
      const uint8_t* starts[NR];
      for (int r = 0; r < NR; ++r) starts[r] = reinterpret_cast<const uint8_t*>(row(k + r) - ct / kPer);
      later.start(starts, int64_t(row_bytes));
    };
    prefetch_first_groups<NR>(ahead, 0, n_active, start_group);
    auto group = [&](auto nr_tag, int64_t k) {
      constexpr int R = decltype(nr_tag)::value;
      const Fmt* w[R];
      const Fmt* next[R];
      for (int r = 0; r < R; ++r) {
        w[r] = row(k + r);
        next[r] = row(k + R + r);
      }
      // Along the rows (kernels/group_prefetch.h) for a stored-row tile
      // of one token; the block formats' QuantRows issue only the stream.
      GroupPrefetch<R> later(tokens == 1 && !kIsBlock<Fmt> ? kernel_prefetch_pattern()
                                                           : PrefetchPattern::kGroupStream);
      if constexpr (R == NR)
        if (ahead > 0 && k + ahead * NR < n_active) start_group(later, k + ahead * NR);
      const float* xr = xk + k * x_stride;
      if constexpr (kIsBlock<Fmt>) {
        if (tokens == 1) QuantRows<R, true>(w, next, later, xr, x_stride, 1, acc, acc_stride, n);
        else QuantRows<R, false>(w, next, later, xr, x_stride, tokens, acc, acc_stride, n);
      } else {
        if (tokens == 1) DenseRows<R, true>(w, next, later, xr, x_stride, 1, acc, acc_stride, n);
        else DenseRows<R, false>(w, next, later, xr, x_stride, tokens, acc, acc_stride, n);
      }
    };
    int64_t k = 0;
    for (; k + NR <= n_active; k += NR) group(std::integral_constant<int, NR>(), k);
    for (; k < n_active; ++k) group(std::integral_constant<int, 1>(), k);
  };
  if (n_tok == 1) {
    // Decode: the whole range is one tile, so each active row streams as one
    // run, straight into y.
    std::fill(y + c0, y + c1, 0.0f);
    rows(c0, c1 - c0, x, 1, 1, y + c0, n_out);
    return;
  }
  // Several tokens. Accumulators and activations live in buffers laid out
  // for the tile: with y's and x's own row strides (n_out, n_active: often
  // multiples of 2-4 KiB) every token's row falls into the same few L1 sets
  // and they evict each other. (Measured on one core, W^T 5632 x 2048, 64
  // tokens, all inputs active: BF16 77 ms with the strided rows, 13 ms with
  // the buffers, vs 14-17 ms for the dense matmul; Q8_0 41 -> 14 ms.)
  thread_local AlignedVector<float> x_buffer, acc_buffer;
  for (int64_t t0 = 0; t0 < n_tok; t0 += kTokenBlock) {
    const int64_t tokens = std::min(kTokenBlock, n_tok - t0);
    const int64_t tile = std::max<int64_t>(64, kTileFloats / tokens / 64 * 64);  // whole blocks
    // Activations token-minor: x_buffer[k * tokens + t].
    x_buffer.resize(static_cast<size_t>(n_active * tokens));
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t k = 0; k < n_active; ++k) x_buffer[k * tokens + t] = x[(t0 + t) * n_active + k];
    acc_buffer.resize(static_cast<size_t>(tokens * tile));
    for (int64_t ct = c0; ct < c1; ct += tile) {
      const int64_t width = std::min(c1 - ct, tile);
      std::fill(acc_buffer.begin(), acc_buffer.end(), 0.0f);
      rows(ct, width, x_buffer.data(), tokens, tokens, acc_buffer.data(), tile);
      for (int64_t t = 0; t < tokens; ++t)
        std::copy(acc_buffer.data() + t * tile, acc_buffer.data() + t * tile + width, y + (t0 + t) * n_out + ct);
    }
  }
}

// Type-erased entry (HWY_EXPORT needs one non-template function).
void SparseInputColumnsTyped(DType type, const uint8_t* wt, uint64_t row_bytes, uint64_t pitch, const float* x,
                             int64_t n_tok, const int32_t* active, int64_t n_active, float* y,
                             int64_t n_out, int64_t c0, int64_t c1) {
  switch (type) {
    case DType::F16:
      return SparseInputColumns<hwy::float16_t>(wt, row_bytes, pitch, x, n_tok, active, n_active, y, n_out, c0, c1);
    case DType::BF16:
      return SparseInputColumns<hwy::bfloat16_t>(wt, row_bytes, pitch, x, n_tok, active, n_active, y, n_out, c0, c1);
    case DType::Q8_0:
      return SparseInputColumns<BlockQ8_0>(wt, row_bytes, pitch, x, n_tok, active, n_active, y, n_out, c0, c1);
    case DType::Q4_0:
      return SparseInputColumns<BlockQ4_0>(wt, row_bytes, pitch, x, n_tok, active, n_active, y, n_out, c0, c1);
    default:
      return SparseInputColumns<float>(wt, row_bytes, pitch, x, n_tok, active, n_active, y, n_out, c0, c1);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace ffn
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ffn {

HWY_EXPORT(SparseInputColumnsTyped);

namespace {

// Below this many multiply-adds a product runs on the calling thread (as in
// for_each_row_chunk: a parallel_for round trip costs ~50K multiply-adds).
constexpr int64_t kMinParallelMacs = 64 * 1024;

// List entries per piece of a gather's work split: ~256 KiB of BF16 rows of
// 2048, a few us, fine enough to even out the threads.
constexpr int64_t kListPiece = 64;

StreamSplit& caller_list_split() {
  thread_local StreamSplit split;
  return split;
}

// How far ahead in a row list the gather prefetches (for_each_row_run).
// Measured here at 50% density, one thread, best of 3: F32/F16/BF16 rows of
// 2048 ran ~10-30% faster than without; 4 and 16 KiB were no better.
constexpr int64_t kGatherPrefetchBytes = 8192;

// Threads split the output columns in units of 64: whole Q8_0/Q4_0 blocks,
// and whole cache lines of fp32 y (and of F32/F16/BF16 weight rows, when
// the rows are line-aligned).
constexpr int64_t kColumnUnit = 64;

}  // namespace

void for_each_list_piece(int64_t n_rows, int64_t macs_per_row, ThreadPool& pool,
                         const std::function<void(int64_t, int64_t)>& piece) {
  if (n_rows * macs_per_row < kMinParallelMacs || pool.size() == 1) {
    piece(0, n_rows);
    return;
  }
  // Each thread streams its own run of pieces and then takes pieces from the
  // back of the other's (core/stream_split.h): on this shared VM one thread
  // often runs ~10% slower on the same bytes, and a static split made the
  // other wait. Each output belongs to one piece, so who runs it does not
  // change the result.
  const int64_t pieces = (n_rows + kListPiece - 1) / kListPiece;
  StreamSplit& split = caller_list_split();
  split.reset(pieces, pool.size());
  pool.parallel_for(pool.size(), [&](int64_t, int64_t, int thread) {
    for (int64_t p = split.next(thread); p >= 0; p = split.next(thread))
      piece(p * kListPiece, std::min(n_rows, (p + 1) * kListPiece));
  });
}

void for_each_row_run(const uint8_t* w, uint64_t row_bytes, int64_t n_tok, int64_t n_in, const int32_t* rows,
                      int64_t n_rows, ThreadPool& pool,
                      const std::function<void(int64_t, int64_t, int64_t)>& run) {
  // Rows to prefetch ahead, and the longest run passed at once (with
  // several tokens at least 4, the dense kernels' tile height).
  const int64_t ahead = std::max<int64_t>(1, kGatherPrefetchBytes / int64_t(row_bytes));
  const int64_t max_len = n_tok == 1 ? ahead : std::max<int64_t>(4, ahead);
  for_each_list_piece(n_rows, n_tok * n_in, pool, [&](int64_t b, int64_t e) {
    int64_t p = b;  // the next list entry to prefetch
    for (int64_t i = b; i < e;) {
      int64_t len = 1;
      while (len < max_len && i + len < e && rows[i + len] == rows[i] + len) ++len;
      for (const int64_t pe = std::min(e, i + len + ahead); p < pe; ++p) {
        const uint8_t* row = w + uint64_t(rows[p]) * row_bytes;
        for (uint64_t o = 0; o < row_bytes; o += 64) __builtin_prefetch(row + o, 0, 3);
        __builtin_prefetch(row + row_bytes - 1, 0, 3);
      }
      run(i, rows[i], len);
      i += len;
    }
  });
}

void matmul_gather_rows(const WeightMatrix& w, const float* x, int64_t n_tok, const int32_t* rows,
                        int64_t n_rows, float* y, ThreadPool& pool) {
  if (w.type == DType::Q8_0 || w.type == DType::Q4_0) {
    matmul_quant_gather_rows(w.type, x, n_tok, w.cols, w.data, rows, n_rows, y, pool);
    return;
  }
  // Each thread takes an equal piece of the list.
  for_each_list_piece(n_rows, n_tok * w.cols, pool, [&](int64_t b, int64_t e) {
    matmul_dense_gather(w.type, x, n_tok, w.cols, w.data, w.pitch(), rows + b, e - b, y + b, n_rows);
  });
}

void matmul_sparse_input(const WeightMatrix& wt, const float* x, int64_t n_tok, const int32_t* active,
                         int64_t n_active, float* y, ThreadPool& pool) {
  const int64_t n_out = wt.cols;
  if (n_tok <= 0 || n_out <= 0) return;
  const uint64_t row_bytes = wt.row_bytes();
  // Products of rows k0..k1 of the active list, columns [c0, c1), into out.
  // Transposed Q8_0/Q4_0 re-laid for integer dot products (sparse_input_q8.h),
  // else the Highway kernel on the stored rows.
  const bool vnni = wt.packed != nullptr && (wt.type == DType::Q8_0 || wt.type == DType::Q4_0);
  auto part = [&](int64_t k0, int64_t k1, float* out, int64_t c0, int64_t c1) {
    if (vnni)
      sparse_input_q8_columns(wt, x + k0, n_active, n_tok, active + k0, k1 - k0, out, n_out, c0, c1);
    else
      HWY_DYNAMIC_DISPATCH(SparseInputColumnsTyped)(wt.type, wt.data, row_bytes, wt.pitch(), x + k0, n_tok,
                                                    active + k0, k1 - k0, out, n_out, c0, c1);
  };
  if (n_tok == 1) {
    sum_list_shares(n_active, n_out, y, pool,
                    [&](int64_t k0, int64_t k1, float* out) { part(k0, k1, out, 0, n_out); });
    return;
  }
  if (n_tok * n_active * n_out < kMinParallelMacs || pool.size() == 1) {
    part(0, n_active, y, 0, n_out);
    return;
  }
  // Several tokens: threads split the columns, so each decoded weight vector
  // serves every token of the batch.
  pool.parallel_for((n_out + kColumnUnit - 1) / kColumnUnit, [&](int64_t b, int64_t e, int) {
    part(0, n_active, y, b * kColumnUnit, std::min(n_out, e * kColumnUnit));
  });
}

void sum_list_shares(int64_t n_rows, int64_t n_out, float* y, ThreadPool& pool,
                     const std::function<void(int64_t, int64_t, float*)>& share) {
  if (n_rows * n_out < kMinParallelMacs || pool.size() == 1) {
    share(0, n_rows, y);
    return;
  }
  const int threads = pool.size();
  // Thread 0's share goes straight into y, the others' into partial sums
  // (thread_local names the caller's buffer only here: a worker naming it
  // would get its own, so the workers get the pointer).
  thread_local AlignedVector<float> partial_buffer;
  partial_buffer.resize(static_cast<size_t>((threads - 1) * n_out));
  float* partial = partial_buffer.data();
  auto out_of = [&](int64_t i) { return i == 0 ? y : partial + (i - 1) * n_out; };
  pool.parallel_for(threads, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) share(n_rows * i / threads, n_rows * (i + 1) / threads, out_of(i));
  });
  // Added one partial at a time, in thread order, on the thread the others
  // wait for: each pass is a vector loop over contiguous floats (a loop over
  // threads inside a loop over columns reads with a stride and does not
  // vectorize; it cost ~2% of Q8_0 TEAL decode), and there is no pass to
  // copy a first partial into y.
  for (int i = 1; i < threads; ++i) {
    const float* __restrict part_i = out_of(i);
    float* __restrict out = y;
    for (int64_t o = 0; o < n_out; ++o) out[o] += part_i[o];
  }
}

void matmul_gather_rows_reference(const WeightMatrix& w, const float* x, int64_t n_tok, const int32_t* rows,
                                  int64_t n_rows, float* y) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t i = 0; i < n_rows; ++i) {
    read_row(w, rows[i], row.data());
    for (int64_t t = 0; t < n_tok; ++t) {
      double s = 0;
      for (int64_t c = 0; c < w.cols; ++c) s += double(x[t * w.cols + c]) * double(row[c]);
      y[t * n_rows + i] = static_cast<float>(s);
    }
  }
}

void matmul_sparse_input_reference(const WeightMatrix& wt, const float* x, int64_t n_tok,
                                   const int32_t* active, int64_t n_active, float* y) {
  const int64_t n_out = wt.cols;
  std::vector<double> acc(static_cast<size_t>(n_tok * n_out), 0.0);
  std::vector<float> row(static_cast<size_t>(n_out));
  for (int64_t k = 0; k < n_active; ++k) {
    read_row(wt, active[k], row.data());
    for (int64_t t = 0; t < n_tok; ++t) {
      const double xk = x[t * n_active + k];
      for (int64_t o = 0; o < n_out; ++o) acc[t * n_out + o] += xk * double(row[o]);
    }
  }
  for (size_t i = 0; i < acc.size(); ++i) y[i] = static_cast<float>(acc[i]);
}

}  // namespace ffn
#endif
