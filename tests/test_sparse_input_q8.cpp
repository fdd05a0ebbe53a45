// The VNNI input-sparse kernel (kernels/sparse_input_q8.h) on Q8_0 and Q4_0
// weights, through matmul_sparse_input on a re-laid W^T, against two
// independent scalar references on random weights and activations:
//
//  1. an emulation of the arithmetic the header defines (groups of 8
//     consecutive active rows, a_jb = x_j d_jb, A = max|a| / 127,
//     q = round-to-nearest-even(a * 127 / max|a|), exact integer sums),
//     accumulated in double. The int8 values are the kernel's exactly, so
//     only the fp32 summation order differs: tolerance 1e-5 of each output's
//     sum of |A q (w + zero)| over groups (the kernel adds the biased
//     integer sums and the zero point's term separately). Groups restart in
//     each thread's share of the list with one token, so this runs where
//     the list is not split: one thread, or several tokens (threads split
//     the columns).
//  2. the exact product (matmul_sparse_input_reference on the file-layout
//     W^T) with the int8 rounding bound: |error| <= sum_j |w_jo| * M_b / 254
//     with M_b the largest |x_j d_jb| of the block over the whole list (the
//     bound of every group), plus the fp32 term. Any thread count.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/half.h"
#include "core/thread_pool.h"
#include "kernels/convert.h"
#include "kernels/group_prefetch.h"
#include "kernels/matmul_quant.h"
#include "kernels/quant_blocks.h"
#include "kernels/sparse_input_q8.h"
#include "kernels/sparse_matmul.h"
#include "kernels/weight_matrix.h"
#include "test_util.h"

namespace ffn {
namespace {

// A random Q8_0 or Q4_0 matrix, read back from the GGUF block definitions.
struct Q8Matrix {
  std::vector<uint8_t> bytes;
  WeightMatrix w;
  // Weight c of block b of `row` (the signed integer) and the block's scale.
  int32_t weight(int64_t row, int64_t b, int64_t c) const {
    if (w.type == DType::Q8_0) return reinterpret_cast<const BlockQ8_0*>(w.row(row))[b].qs[c];
    const BlockQ4_0& blk = reinterpret_cast<const BlockQ4_0*>(w.row(row))[b];
    return int32_t(c < 16 ? blk.qs[c] & 0x0f : blk.qs[c - 16] >> 4) - 8;
  }
  float scale(int64_t row, int64_t b) const {
    uint16_t d;
    std::memcpy(&d, w.row(row) + uint64_t(b) * dtype_row_bytes(w.type, kQuantBlock), 2);
    return f16_to_f32(d);
  }
  int32_t zero() const { return w.type == DType::Q8_0 ? 128 : 8; }
};
Q8Matrix random_q8(int64_t rows, int64_t cols, uint64_t seed, DType type = DType::Q8_0) {
  Q8Matrix m;
  m.w = WeightMatrix{.type = type, .rows = rows, .cols = cols};
  m.bytes.resize(m.w.bytes());
  const auto f = test::random_floats(size_t(rows * cols), seed);
  for (int64_t r = 0; r < rows; ++r)
    encode_row(type, f.data() + r * cols, m.bytes.data() + r * m.w.row_bytes(), uint64_t(cols));
  m.w.data = m.bytes.data();
  return m;
}

// Reference 1: the header's arithmetic, scalar. out: y; scale: the
// tolerance scale per output.
void emulate(const Q8Matrix& m, const float* x, int64_t n_tok, const std::vector<int32_t>& active,
             std::vector<double>& out, std::vector<double>& scale) {
  const int64_t n_out = m.w.cols, n_active = int64_t(active.size());
  out.assign(size_t(n_tok * n_out), 0.0);
  scale.assign(out.size(), 0.0);
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t g = 0; g < n_active; g += 8) {
      const int64_t rows = std::min<int64_t>(8, n_active - g);
      for (int64_t b = 0; b < n_out / kQuantBlock; ++b) {
        float a[8], largest = 0.0f;
        for (int64_t r = 0; r < rows; ++r) {
          a[r] = m.scale(active[size_t(g + r)], b) * x[t * n_active + g + r];
          largest = std::max(largest, std::abs(a[r]));
        }
        const float step = largest * (1.0f / 127.0f), inv = largest > 0.0f ? 127.0f / largest : 0.0f;
        int32_t q[8];
        for (int64_t r = 0; r < rows; ++r) q[r] = int32_t(std::nearbyint(a[r] * inv));
        for (int64_t c = 0; c < kQuantBlock; ++c) {
          int64_t sum = 0, biased = 0;
          for (int64_t r = 0; r < rows; ++r) {
            const int32_t w = m.weight(active[size_t(g + r)], b, c);
            sum += int64_t(q[r]) * w;
            biased += int64_t(std::abs(q[r])) * (std::abs(w) + m.zero());
          }
          const size_t o = size_t(t * n_out + b * kQuantBlock + c);
          out[o] += double(step) * double(sum);
          scale[o] += double(step) * double(biased);
        }
      }
    }
}

// Reference 2's tolerance: sum_j |w_jo| * M_b / 254 per output.
std::vector<double> rounding_bound(const Q8Matrix& m, const float* x, int64_t n_tok,
                                   const std::vector<int32_t>& active) {
  const int64_t n_out = m.w.cols, n_active = int64_t(active.size());
  std::vector<double> bound(size_t(n_tok * n_out), 0.0);
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t b = 0; b < n_out / kQuantBlock; ++b) {
      double largest = 0;
      for (int64_t k = 0; k < n_active; ++k)
        largest = std::max(largest, std::abs(double(m.scale(active[size_t(k)], b)) * x[t * n_active + k]));
      for (int64_t k = 0; k < n_active; ++k)
        for (int64_t c = 0; c < kQuantBlock; ++c)
          bound[size_t(t * n_out + b * kQuantBlock + c)] +=
              std::abs(double(m.weight(active[size_t(k)], b, c))) * largest / 254.0;
    }
  return bound;
}

void check(DType type, int64_t n_in, int64_t n_out, int64_t n_tok, int64_t count, ThreadPool& pool) {
  const std::string what = std::string(dtype_name(type)) + " " + std::to_string(n_in) + "x" +
                           std::to_string(n_out) + " tokens " +
                           std::to_string(n_tok) + " active " + std::to_string(count) + " threads " +
                           std::to_string(pool.size());
  const Q8Matrix m = random_q8(n_in, n_out, uint64_t(5 + n_in + n_out), type);
  const WeightMatrix packed = packed_for_sparse_input(m.w);
  ASSERT_NE(packed.packed, nullptr) << what;
  ASSERT_EQ(packed.data, nullptr) << what;
  const auto active = test::random_subset(n_in, count, uint64_t(3 + count));
  auto x = test::random_floats(size_t(n_tok * count), uint64_t(11 + n_tok));
  if (count > 2) x[1] = 0.0f;  // an active input may be exactly 0
  if (count > 12) std::fill(x.begin() + 8, x.begin() + 12, 0.0f);  // half a group of zeros

  std::vector<float> y(size_t(n_tok * n_out), NAN);  // fully overwritten
  matmul_sparse_input(packed, x.data(), n_tok, active.data(), count, y.data(), pool);

  std::vector<double> ref, scale;
  emulate(m, x.data(), n_tok, active, ref, scale);
  std::vector<float> exact(y.size());
  matmul_sparse_input_reference(m.w, x.data(), n_tok, active.data(), count, exact.data());
  const auto bound = rounding_bound(m, x.data(), n_tok, active);
  auto verify = [&](const std::vector<float>& out, const std::string& form) {
    if (n_tok > 1 || pool.size() == 1) {
      for (size_t i = 0; i < out.size(); ++i)
        ASSERT_NEAR(out[i], ref[i], 1e-5 * scale[i] + 1e-30) << what << form << " (emulation) at " << i;
    }
    for (size_t i = 0; i < out.size(); ++i)
      ASSERT_NEAR(out[i], exact[i], bound[i] * 1.0001 + 1e-4 * (bound[i] + 1e-30))
          << what << form << " (exact) at " << i;
  };
  ASSERT_NO_FATAL_FAILURE(verify(y, ""));
  if (pool.size() == 1) {
    // The AVX-512BW form (what CPUs without VNNI run) on its own. Its integer
    // sums equal VNNI's, but Q8_0 takes no zero point there, so the floats
    // are combined in another order: checked against the same references.
    std::vector<float> portable(y.size(), NAN);
    sparse_input_q8_columns(packed, x.data(), count, n_tok, active.data(), count, portable.data(), n_out, 0, n_out,
                            QuantPath::Portable);
    ASSERT_NO_FATAL_FAILURE(verify(portable, " (AVX-512BW form)"));
  }
}

// n_out: one chunk, three chunks, and 640 (with several tokens a 512-column
// tile and a 128-column one; with 3 threads 64-column units split unevenly).
// Counts: none, one, a group minus/plus one row, 37%, all. Tokens: one, a
// partial token block, one block plus one (blocks of 8), two blocks plus one.
TEST(SparseInputQ8, MatchesEmulationAndExactProduct) {
  if (!cpu_has_avx512bw()) GTEST_SKIP() << "no AVX-512 BW on this CPU";
  ThreadPool pool1(1), pool3(3);
  for (DType type : {DType::Q8_0, DType::Q4_0})
    for (int64_t n_in : {45, 333})
      for (int64_t n_out : {64, 192, 640})
        for (int64_t n_tok : {1, 3, 9, 17})
          for (int64_t count : {int64_t(0), int64_t(1), int64_t(7), int64_t(9), n_in * 37 / 100, n_in})
            for (ThreadPool* pool : {&pool1, &pool3})
              ASSERT_NO_FATAL_FAILURE(check(type, n_in, n_out, n_tok, count, *pool));
}

// The prefetch distance (prefetch_groups; BM_SparseInputPrefetch
// overrides it) and pattern (kernels/group_prefetch.h) only move
// prefetches: one-token products are bit for bit the same with none, the
// default, two groups and a distance past the list's end (200 rows are 25
// groups), with the group stream and along the rows (whose prefetches run
// past a row's end into the next group's, or, in the last group, stay in
// its own rows), also on rows that are not whole cache lines (192 outputs in
// Q4_0: 160 bytes) and rows shorter than the along distance.
TEST(SparseInputQ8, PrefetchDistanceAndPatternDoNotChangeProducts) {
  if (!cpu_has_avx512bw()) GTEST_SKIP() << "no AVX-512 BW on this CPU";
  ThreadPool pool(2);
  for (DType type : {DType::Q8_0, DType::Q4_0})
    for (int64_t n_out : {int64_t(640), int64_t(192)}) {
      const Q8Matrix m = random_q8(333, n_out, 31, type);
      const WeightMatrix packed = packed_for_sparse_input(m.w);
      ASSERT_NE(packed.packed, nullptr);
      const auto active = test::random_subset(333, 200, 32);
      const auto x = test::random_floats(200, 33);
      std::vector<std::vector<float>> y;
      for (PrefetchPattern pattern : {PrefetchPattern::kGroupStream, PrefetchPattern::kAlongRows})
        for (int groups : {-1, 0, 2, 40}) {
          override_prefetch_pattern(pattern);
          override_prefetch_groups(groups);
          y.emplace_back(size_t(n_out), NAN);
          matmul_sparse_input(packed, x.data(), 1, active.data(), 200, y.back().data(), pool);
        }
      override_prefetch_groups(-1);
      override_prefetch_pattern(std::nullopt);
      EXPECT_EQ(prefetch_groups(8 * 2176), 1);
      EXPECT_EQ(prefetch_groups(8 * 1152), 2);
      for (size_t i = 1; i < y.size(); ++i) EXPECT_EQ(y[0], y[i]) << dtype_name(type) << " " << n_out << " " << i;
      EXPECT_FALSE(std::isnan(y[0][size_t(n_out - 1)])) << dtype_name(type);
    }
}

// Rows placed at page ends (kernels/row_placement.h) by each of the three
// packers hold the bytes of the packed rows, each ending a 4 KiB page, and
// give bit for bit the products of the packed rows: one token (threads
// split the list) and 9 (threads split the columns). 2048 outputs of Q8_0:
// 2176-byte rows, as TinyLlama's down^T; 192: rows of 256 (Q8_0) or 160 bytes.
TEST(SparseInputQ8, RowsAtPageEndsGiveTheSameBytesAndProducts) {
  if (!cpu_has_avx512bw()) GTEST_SKIP() << "no AVX-512 BW on this CPU";
  ThreadPool pool(2);
  for (DType type : {DType::Q8_0, DType::Q4_0})
    for (int64_t n_out : {int64_t(2048), int64_t(192)}) {
      const Q8Matrix m = random_q8(101, n_out, 51, type);
      const Q8Matrix left = random_q8(101, n_out - 64, 52, type), right = random_q8(101, 64, 56, type);
      // W [n_out, 128] whose transpose is packed straight into the layout.
      const Q8Matrix w = random_q8(n_out, 128, 53, type);
      const uint64_t stride = sparse_input_row_stride(type, n_out);
      struct Pair {
        WeightMatrix packed, pages;
        int64_t rows;
      };
      const Pair pairs[] = {
          {packed_for_sparse_input(m.w, &pool, RowPlacement::kPacked),
           packed_for_sparse_input(m.w, &pool, RowPlacement::kPageEnds), 101},
          {packed_for_sparse_input({&left.w, &right.w}, &pool, RowPlacement::kPacked),
           packed_for_sparse_input({&left.w, &right.w}, &pool, RowPlacement::kPageEnds), 101},
          {packed_transposed_for_sparse_input({&w.w}, &pool, RowPlacement::kPacked),
           packed_transposed_for_sparse_input({&w.w}, &pool, RowPlacement::kPageEnds), 128},
      };
      for (const Pair& p : pairs) {
        const std::string what = std::string(dtype_name(type)) + " n_out " + std::to_string(n_out);
        ASSERT_NE(p.pages.packed, nullptr) << what;
        EXPECT_EQ(p.packed.row_pitch, 0u) << what;
        const uint64_t pitch = sparse_input_row_pitch(p.pages);
        EXPECT_EQ(pitch % 4096, 0u) << what;
        for (int64_t j = 0; j < p.rows; ++j) {
          const uint8_t* row = p.pages.packed + uint64_t(j) * pitch;
          ASSERT_EQ((reinterpret_cast<uintptr_t>(row) + stride) % 4096, 0u) << what << " row " << j;
          ASSERT_EQ(std::memcmp(row, p.packed.packed + uint64_t(j) * stride, stride), 0) << what << " row " << j;
        }
        for (int64_t n_tok : {1, 9}) {
          const int64_t count = p.rows * 6 / 10;
          std::vector<int32_t> active = test::random_subset(p.rows, count, 54);
          std::sort(active.begin(), active.end());
          const auto x = test::random_floats(size_t(n_tok * count), 55);
          std::vector<float> y_packed(size_t(n_tok * n_out), NAN), y_pages(y_packed.size(), -1.0f);
          matmul_sparse_input(p.packed, x.data(), n_tok, active.data(), count, y_packed.data(), pool);
          matmul_sparse_input(p.pages, x.data(), n_tok, active.data(), count, y_pages.data(), pool);
          EXPECT_FALSE(std::isnan(y_packed.back())) << what;
          EXPECT_EQ(y_pages, y_packed) << what << " tokens " << n_tok;
        }
      }
    }
}

TEST(SparseInputQ8, PacksQ8AndQ4WithWholeChunks) {
  if (!cpu_has_avx512bw()) GTEST_SKIP() << "no AVX-512 BW on this CPU";
  EXPECT_TRUE(can_pack_sparse_input(random_q8(5, 128, 1).w));
  EXPECT_TRUE(can_pack_sparse_input(random_q8(5, 128, 1, DType::Q4_0).w));
  EXPECT_FALSE(can_pack_sparse_input(random_q8(5, 96, 1, DType::Q4_0).w));
  EXPECT_FALSE(can_pack_sparse_input(random_q8(5, 96, 1).w));  // 96 outputs: 1.5 chunks
  WeightMatrix bf16{.type = DType::BF16, .rows = 4, .cols = 64};
  std::vector<uint8_t> bytes(bf16.bytes(), 1);
  bf16.data = bytes.data();
  EXPECT_FALSE(can_pack_sparse_input(bf16));
  const WeightMatrix unchanged = packed_for_sparse_input(bf16);
  EXPECT_EQ(unchanged.data, bf16.data);
  EXPECT_EQ(unchanged.packed, nullptr);
}

// Parts packed side by side give the bytes of their concat_columns packed:
// the q/k/v and gate/up W^T of TEAL are packed so without the joined copy.
TEST(SparseInputQ8, PartsPackAsTheirConcatenation) {
  if (!cpu_has_avx512bw()) GTEST_SKIP() << "no AVX-512 BW on this CPU";
  for (DType type : {DType::Q8_0, DType::Q4_0}) {
  const Q8Matrix a = random_q8(45, 192, 3, type), b = random_q8(45, 64, 4, type), c = random_q8(45, 128, 5, type);
  ThreadPool pool(3);
  const WeightMatrix joined = packed_for_sparse_input(concat_columns({&a.w, &b.w, &c.w}));
  const WeightMatrix parts = packed_for_sparse_input({&a.w, &b.w, &c.w}, &pool);
  ASSERT_NE(parts.packed, nullptr);
  ASSERT_EQ(parts.rows, 45);
  ASSERT_EQ(parts.cols, 384);
  const uint64_t bytes = uint64_t(45) * sparse_input_row_stride(type, 384);
  EXPECT_EQ(std::memcmp(parts.packed, joined.packed, bytes), 0);
  // A part that cannot take the layout (96 columns): the plain concatenation.
  const Q8Matrix odd = random_q8(45, 96, 6, type);
  const WeightMatrix fallback = packed_for_sparse_input({&a.w, &odd.w});
  EXPECT_EQ(fallback.packed, nullptr);
  ASSERT_EQ(fallback.cols, 192 + 96);
  EXPECT_EQ(std::memcmp(fallback.row(44), a.w.row(44), a.w.row_bytes()), 0);
  EXPECT_EQ(std::memcmp(fallback.row(44) + a.w.row_bytes(), odd.w.row(44), odd.w.row_bytes()), 0);
  }
  // Parts of different types cannot share the layout.
  const Q8Matrix q8 = random_q8(45, 64, 7), q4 = random_q8(45, 64, 8, DType::Q4_0);
  EXPECT_EQ(packed_for_sparse_input({&q8.w, &q4.w}).packed, nullptr);
}

// Transposing straight into the layout gives the bytes of transposing first
// and packing the transposes side by side (the run-time TEAL path at load).
// 160 columns: panels of 64, 64 and 32.
TEST(SparseInputQ8, TransposedPartsPackAsTheirTransposesPacked) {
  if (!cpu_has_avx512bw()) GTEST_SKIP() << "no AVX-512 BW on this CPU";
  ThreadPool pool(3);
  for (DType type : {DType::Q8_0, DType::Q4_0}) {
    const Q8Matrix a = random_q8(128, 160, 11, type), b = random_q8(64, 160, 12, type);
    const Q8Matrix c = random_q8(192, 160, 13, type);
    ASSERT_TRUE(can_pack_transposed_for_sparse_input({&a.w, &b.w, &c.w}));
    const WeightMatrix at = transposed(a.w), bt = transposed(b.w), ct = transposed(c.w);
    const WeightMatrix two = packed_transposed_for_sparse_input({&a.w, &b.w}, &pool);
    const WeightMatrix two_ref = packed_for_sparse_input({&at, &bt});
    ASSERT_NE(two.packed, nullptr);
    ASSERT_EQ(two.rows, 160);
    ASSERT_EQ(two.cols, 192);
    EXPECT_EQ(std::memcmp(two.packed, two_ref.packed, 160 * sparse_input_row_stride(type, 192)), 0) << dtype_name(type);
    const WeightMatrix three = packed_transposed_for_sparse_input({&a.w, &b.w, &c.w});
    const WeightMatrix three_ref = packed_for_sparse_input({&at, &bt, &ct});
    EXPECT_EQ(std::memcmp(three.packed, three_ref.packed, 160 * sparse_input_row_stride(type, 384)), 0)
        << dtype_name(type);
  }
  // W^T rows that are not whole chunks (96), mixed types, a shape without data.
  const Q8Matrix q8 = random_q8(64, 64, 1), q4 = random_q8(64, 64, 2, DType::Q4_0), short_rows = random_q8(96, 64, 3);
  EXPECT_FALSE(can_pack_transposed_for_sparse_input({&short_rows.w}));
  EXPECT_FALSE(can_pack_transposed_for_sparse_input({&q8.w, &q4.w}));
  const WeightMatrix shape{.type = DType::Q8_0, .rows = 64, .cols = 64};
  EXPECT_FALSE(can_pack_transposed_for_sparse_input({&shape}));
}

}  // namespace
}  // namespace ffn
