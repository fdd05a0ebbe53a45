// Sparse kernels (matmul_gather_rows, matmul_sparse_input) and transposed()
// against their scalar references, for every weight type, at odd sizes (not
// multiples of any vector width where the type allows it), several token
// counts, active sets from empty to full, and pools of 1 and 3 threads.
//
// Tolerance: 1e-5 of each output's sum of |x_i * w_i| (fp32 accumulation in
// another order than the double reference). The VNNI path of the quantized
// gather quantizes activations to int8 per 32-block; it is compared with the
// reference run on those int8-rounded activations, at the same tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <numeric>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "hwy/targets.h"
#include "kernels/convert.h"
#include "kernels/group_prefetch.h"
#include "kernels/matmul_quant.h"
#include "kernels/sparse_input_q8.h"
#include "kernels/sparse_matmul.h"
#include "kernels/weight_matrix.h"
#include "test_util.h"

namespace ffn {
namespace {

constexpr DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};

bool is_quant(DType t) { return t == DType::Q8_0 || t == DType::Q4_0; }

std::vector<float> normal_floats(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// A [rows, cols] matrix of normal weights encoded as `type`, with its storage.
struct TestMatrix {
  std::vector<uint8_t> bytes;
  WeightMatrix w;
};
TestMatrix random_matrix(DType type, int64_t rows, int64_t cols, uint64_t seed) {
  TestMatrix m;
  m.w = WeightMatrix{.type = type, .rows = rows, .cols = cols};
  m.bytes.resize(m.w.bytes());
  const auto f = normal_floats(size_t(rows * cols), seed);
  for (int64_t r = 0; r < rows; ++r)
    encode_row(type, f.data() + r * cols, m.bytes.data() + r * m.w.row_bytes(), uint64_t(cols));
  m.w.data = m.bytes.data();
  return m;
}

// |W| decoded, as an F32 matrix: the reference run on it with |x| gives each
// output's sum of |x_i * w_i|, the scale of its rounding error.
TestMatrix abs_matrix(const WeightMatrix& w) {
  TestMatrix m;
  m.w = WeightMatrix{.type = DType::F32, .rows = w.rows, .cols = w.cols};
  m.bytes.resize(m.w.bytes());
  std::vector<float> row(size_t(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    read_row(w, r, row.data());
    for (auto& v : row) v = std::abs(v);
    std::memcpy(m.bytes.data() + r * m.w.row_bytes(), row.data(), m.w.row_bytes());
  }
  m.w.data = m.bytes.data();
  return m;
}

std::vector<float> abs_of(std::vector<float> v) {
  for (auto& x : v) x = std::abs(x);
  return v;
}

// Active-set sizes: none, one, 37%, all.
std::vector<int64_t> subset_sizes(int64_t n) { return {0, 1, std::max<int64_t>(1, n * 37 / 100), n}; }

void check_close(const std::vector<float>& y, const std::vector<float>& ref, const std::vector<float>& l1,
                  const std::string& what) {
  ASSERT_EQ(y.size(), ref.size()) << what;
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_NEAR(y[i], ref[i], 1e-5 * l1[i] + 1e-30) << what << " at " << i;
}

// W [n_out, n_in]: for quantized types n_in is a multiple of 32. The second
// shape is large enough that pools of 3 threads really split the list.
TEST(SparseKernels, GatherRowsMatchesReference) {
  ThreadPool pool1(1), pool3(3);
  for (DType type : kTypes) {
    const int64_t shapes[2][2] = {{37, is_quant(type) ? 96 : 45}, {517, is_quant(type) ? 352 : 333}};
    for (const auto& shape : shapes) {
      const int64_t n_out = shape[0], n_in = shape[1];
      const TestMatrix m = random_matrix(type, n_out, n_in, 11 + n_out);
      const TestMatrix m_abs = abs_matrix(m.w);
      for (int64_t n_tok : {1, 3, 7}) {
        const auto x = normal_floats(size_t(n_tok * n_in), 5 + n_tok);
        for (int64_t count : subset_sizes(n_out)) {
          const auto rows = test::random_subset(n_out, count, 3 + count);
          std::vector<float> ref(size_t(n_tok * count)), l1(ref.size()), y(ref.size());
          matmul_gather_rows_reference(m.w, x.data(), n_tok, rows.data(), count, ref.data());
          matmul_gather_rows_reference(m_abs.w, abs_of(x).data(), n_tok, rows.data(), count, l1.data());
          for (ThreadPool* pool : {&pool1, &pool3}) {
            const std::string what = dtype_name(type) + " " + std::to_string(n_out) + "x" + std::to_string(n_in) +
                                     " tokens " + std::to_string(n_tok) + " rows " + std::to_string(count) +
                                     " threads " + std::to_string(pool->size());
            std::fill(y.begin(), y.end(), NAN);
            if (!is_quant(type) || !cpu_has_vnni()) {
              matmul_gather_rows(m.w, x.data(), n_tok, rows.data(), count, y.data(), *pool);
              check_close(y, ref, l1, what);
            }
            if (!is_quant(type)) continue;
            std::fill(y.begin(), y.end(), NAN);
            matmul_quant_gather_rows(type, x.data(), n_tok, n_in, m.w.data, rows.data(), count, y.data(), *pool,
                                     QuantPath::Portable);
            check_close(y, ref, l1, what + " portable");
            if (!cpu_has_vnni()) {
              std::printf("no AVX-512 VNNI on this CPU: Vnni path not tested\n");
              continue;
            }
            // The VNNI path (also what matmul_gather_rows picks here): the
            // reference on the int8-rounded activations.
            const auto x8 = test::int8_roundtrip(x);
            std::vector<float> ref8(ref.size()), l1_8(ref.size());
            matmul_gather_rows_reference(m.w, x8.data(), n_tok, rows.data(), count, ref8.data());
            matmul_gather_rows_reference(m_abs.w, abs_of(x8).data(), n_tok, rows.data(), count, l1_8.data());
            std::fill(y.begin(), y.end(), NAN);
            matmul_quant_gather_rows(type, x.data(), n_tok, n_in, m.w.data, rows.data(), count, y.data(), *pool,
                                     QuantPath::Vnni);
            check_close(y, ref8, l1_8, what + " vnni");
            std::fill(y.begin(), y.end(), NAN);
            matmul_gather_rows(m.w, x.data(), n_tok, rows.data(), count, y.data(), *pool);
            check_close(y, ref8, l1_8, what + " auto");
          }
        }
      }
    }
  }
}

// matmul_sparse_input against its reference for one shape, token count and
// active-set size, on every pool given.
void check_sparse_input(DType type, int64_t n_in, int64_t n_out, int64_t n_tok, int64_t count,
                        std::initializer_list<ThreadPool*> pools) {
  const TestMatrix m = random_matrix(type, n_in, n_out, 13 + n_in);
  const TestMatrix m_abs = abs_matrix(m.w);
  const auto active = test::random_subset(n_in, count, 7 + count);
  auto x = normal_floats(size_t(n_tok * count), 9 + n_tok);
  if (count > 2) x[1] = 0.0f;  // an active input may still be exactly 0
  std::vector<float> ref(size_t(n_tok * n_out)), l1(ref.size()), y(ref.size());
  matmul_sparse_input_reference(m.w, x.data(), n_tok, active.data(), count, ref.data());
  matmul_sparse_input_reference(m_abs.w, abs_of(x).data(), n_tok, active.data(), count, l1.data());
  for (ThreadPool* pool : pools) {
    std::fill(y.begin(), y.end(), NAN);  // y is fully overwritten, even with no active input
    matmul_sparse_input(m.w, x.data(), n_tok, active.data(), count, y.data(), *pool);
    ASSERT_NO_FATAL_FAILURE(check_close(y, ref, l1,
                                         dtype_name(type) + " " + std::to_string(n_in) + "x" + std::to_string(n_out) +
                                             " tokens " + std::to_string(n_tok) + " active " + std::to_string(count) +
                                             " threads " + std::to_string(pool->size())));
  }
}

// W^T [n_in, n_out]: for quantized types n_out (the block dimension) is a
// multiple of 32 and n_in is odd. One token on 3 threads: three partial sums
// over thirds of the active list. Several tokens: 517 / 608 outputs split
// into 64-column units leave the last thread a partial unit (a vector tail
// for the dense types, one 32-block for the quantized ones), with 7 tokens
// the 608-column range takes two column tiles, and 67 tokens take two token
// blocks.
TEST(SparseKernels, SparseInputMatchesReference) {
  ThreadPool pool1(1), pool3(3);
  for (DType type : kTypes) {
    const int64_t shapes[2][2] = {{45, is_quant(type) ? 224 : 37}, {333, is_quant(type) ? 608 : 517}};
    for (const auto& shape : shapes)
      for (int64_t n_tok : {1, 3, 7})
        for (int64_t count : subset_sizes(shape[0]))
          ASSERT_NO_FATAL_FAILURE(check_sparse_input(type, shape[0], shape[1], n_tok, count, {&pool1, &pool3}));
    // More tokens than one token block (64).
    ASSERT_NO_FATAL_FAILURE(check_sparse_input(type, 45, shapes[0][1], 67, 17, {&pool1, &pool3}));
  }
}

// One token on several threads: partial sums over shares of the active
// list, added in a fixed order, so repeated products are bit for bit the
// same (a split that moved work between threads from call to call would
// change the rounding): BF16 through the Highway kernel, Q8_0 through the
// VNNI layout where the CPU has it. Also with either prefetch pattern
// (kernels/group_prefetch.h), which moves only prefetches.
TEST(SparseKernels, OneTokenSparseInputIsTheSameOnEveryCall) {
  ThreadPool pool(3);
  for (DType type : {DType::BF16, DType::F32, DType::Q8_0}) {
    const TestMatrix m = random_matrix(type, 2001, 640, 41);
    const WeightMatrix w = type == DType::Q8_0 ? packed_for_sparse_input(m.w) : m.w;
    const auto active = test::random_subset(2001, 1201, 42);
    const auto x = normal_floats(1201, 43);
    std::vector<float> first(640), y(640);
    matmul_sparse_input(w, x.data(), 1, active.data(), 1201, first.data(), pool);
    for (int call = 0; call < 40; ++call) {
      override_prefetch_pattern(call % 2 ? PrefetchPattern::kAlongRows : PrefetchPattern::kGroupStream);
      matmul_sparse_input(w, x.data(), 1, active.data(), 1201, y.data(), pool);
      override_prefetch_pattern(std::nullopt);
      ASSERT_EQ(y, first) << dtype_name(type) << " call " << call;
    }
  }
}

// Every ISA this binary carries kernels for (AVX-512, AVX2, SSE4, ...,
// scalar), not only the one this CPU would pick: Highway's test hook
// restricts dispatch to one target at a time. (The AVX2 and narrower
// targets take other code paths: 2 rows per pass for Q8_0/Q4_0, Q4_0
// decoded without the 16-lane table lookup.)
TEST(SparseKernels, SparseInputMatchesReferenceOnEveryCompiledTarget) {
  ThreadPool pool(1);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    for (DType type : kTypes)
      for (int64_t n_tok : {1, 3})
        for (int64_t count : {int64_t(17), int64_t(45)})
          ASSERT_NO_FATAL_FAILURE(check_sparse_input(type, 45, is_quant(type) ? 224 : 37, n_tok, count, {&pool}));
  }
  hwy::SetSupportedTargetsForTest(0);
}

// The F32/F16/BF16 gather kernel (8 listed rows per tile for one token, 4 x 4
// tiles for batches) on every compiled target, as above.
TEST(SparseKernels, GatherRowsMatchesReferenceOnEveryCompiledTarget) {
  ThreadPool pool(1);
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    for (DType type : {DType::F32, DType::F16, DType::BF16}) {
      const int64_t n_out = 45, n_in = 37;
      const TestMatrix m = random_matrix(type, n_out, n_in, 31);
      const TestMatrix m_abs = abs_matrix(m.w);
      for (int64_t n_tok : {1, 3, 5})
        for (int64_t count : {int64_t(5), int64_t(17), n_out}) {
          const auto x = normal_floats(size_t(n_tok * n_in), 9 + n_tok);
          const auto rows = test::random_subset(n_out, count, 7 + count);
          std::vector<float> ref(size_t(n_tok * count)), l1(ref.size()), y(ref.size(), NAN);
          matmul_gather_rows_reference(m.w, x.data(), n_tok, rows.data(), count, ref.data());
          matmul_gather_rows_reference(m_abs.w, abs_of(x).data(), n_tok, rows.data(), count, l1.data());
          matmul_gather_rows(m.w, x.data(), n_tok, rows.data(), count, y.data(), pool);
          ASSERT_NO_FATAL_FAILURE(check_close(y, ref, l1,
                                              dtype_name(type) + " tokens " + std::to_string(n_tok) + " rows " +
                                                  std::to_string(count)));
        }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

std::vector<uint8_t> bytes_of(const WeightMatrix& w) { return {w.data, w.data + w.bytes()}; }

// Parts of one type join as bytes; mixed types (F32 q/k beside an F16 v, as
// a file may store them) join as F32 holding every value exactly.
TEST(SparseKernels, ConcatColumnsJoinsSameTypesAsBytesAndMixedTypesAsF32) {
  const TestMatrix a = random_matrix(DType::F32, 9, 8, 1), b = random_matrix(DType::F16, 9, 4, 2),
                   q = random_matrix(DType::Q8_0, 9, 64, 3), q2 = random_matrix(DType::Q8_0, 9, 32, 4);
  const WeightMatrix same = concat_columns({&q.w, &q2.w});
  EXPECT_EQ(same.type, DType::Q8_0);
  EXPECT_EQ(same.cols, 96);
  for (int64_t r = 0; r < 9; ++r) {
    EXPECT_EQ(std::memcmp(same.row(r), q.w.row(r), q.w.row_bytes()), 0);
    EXPECT_EQ(std::memcmp(same.row(r) + q.w.row_bytes(), q2.w.row(r), q2.w.row_bytes()), 0);
  }
  const WeightMatrix mixed = concat_columns({&a.w, &b.w, &q.w});
  ASSERT_EQ(mixed.type, DType::F32);
  ASSERT_EQ(mixed.cols, 8 + 4 + 64);
  std::vector<float> row(76), part(64);
  for (int64_t r = 0; r < 9; ++r) {
    read_row(mixed, r, row.data());
    int64_t at = 0;
    for (const WeightMatrix* p : {&a.w, &b.w, &q.w}) {
      read_row(*p, r, part.data());
      for (int64_t j = 0; j < p->cols; ++j) ASSERT_EQ(row[at + j], part[j]) << r << " " << at + j;
      at += p->cols;
    }
  }
  const TestMatrix short_rows = random_matrix(DType::F32, 5, 8, 5);
  EXPECT_THROW(concat_columns({&a.w, &short_rows.w}), std::invalid_argument);
}

// Rows held elsewhere (as a file mapping holds them) are copied into memory
// of the matrix's own; rows it owns already stay where they are.
TEST(SparseKernels, WithOwnRowsCopiesBorrowedRows) {
  const TestMatrix m = random_matrix(DType::BF16, 33, 64, 5);
  const WeightMatrix borrowed{.type = m.w.type, .rows = m.w.rows, .cols = m.w.cols, .data = m.w.data};
  const WeightMatrix own = with_own_rows(borrowed);
  ASSERT_NE(own.owned, nullptr);
  EXPECT_NE(own.data, borrowed.data);
  EXPECT_EQ(bytes_of(own), m.bytes);
  EXPECT_EQ(with_own_rows(own).data, own.data);
}

// F32, F16 and BF16 transpose exactly (decode and encode are exact for the
// values they hold), so transposing twice gives the same bytes.
TEST(SparseKernels, TransposedTwiceIsExactForDenseTypes) {
  ThreadPool pool(3);
  for (DType type : {DType::F32, DType::F16, DType::BF16}) {
    const TestMatrix m = random_matrix(type, 131, 70, 21);
    const WeightMatrix t = transposed(m.w);
    ASSERT_EQ(t.type, type);
    ASSERT_EQ(t.rows, 70);
    ASSERT_EQ(t.cols, 131);
    std::vector<float> a(131), b(70);
    for (int64_t r : {0, 5, 130}) {
      read_row(m.w, r, b.data());
      for (int64_t c : {0, 33, 69}) {
        read_row(t, c, a.data());
        ASSERT_EQ(a[r], b[c]) << dtype_name(type) << " " << r << " " << c;
      }
    }
    EXPECT_EQ(bytes_of(transposed(t)), m.bytes) << dtype_name(type);
    EXPECT_EQ(bytes_of(transposed(t, &pool)), m.bytes) << dtype_name(type) << " pool";
  }
}

// Q8_0 / Q4_0 are re-quantized along the new rows: every weight of
// transposed(W) is within one quantization step of the exact transpose of
// decoded W (Q8_0: step max|w| / 127 per 32-block, half of it plus the fp16
// rounding of the scale; Q4_0: step max|w| / 8, up to a full step at the
// clamped end). A new row length that is not a multiple of 32 gives F16.
TEST(SparseKernels, TransposedRequantizesQuantTypesWithinOneStep) {
  ThreadPool pool(3);
  for (DType type : {DType::Q8_0, DType::Q4_0}) {
    const TestMatrix m = random_matrix(type, 96, 160, 23);
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      const WeightMatrix t = transposed(m.w, p);
      ASSERT_EQ(t.type, type);
      ASSERT_EQ(t.rows, 160);
      ASSERT_EQ(t.cols, 96);
      std::vector<float> dense(96 * 160), row(96);
      for (int64_t r = 0; r < 96; ++r) read_row(m.w, r, dense.data() + r * 160);
      for (int64_t c = 0; c < 160; ++c) {
        read_row(t, c, row.data());
        for (int64_t b = 0; b < 96; b += 32) {
          float amax = 0;
          for (int64_t j = b; j < b + 32; ++j) amax = std::max(amax, std::abs(dense[j * 160 + c]));
          const float step = type == DType::Q8_0 ? amax / 127 * 0.6f : amax / 8 * 1.01f;
          for (int64_t j = b; j < b + 32; ++j)
            ASSERT_NEAR(row[j], dense[j * 160 + c], step) << dtype_name(type) << " " << c << " " << j;
        }
      }
    }
    const TestMatrix odd = random_matrix(type, 37, 64, 29);
    const WeightMatrix t = transposed(odd.w);
    EXPECT_EQ(t.type, DType::F16) << dtype_name(type);
    std::vector<float> a(37), b(64);
    read_row(odd.w, 36, b.data());
    read_row(t, 63, a.data());
    EXPECT_NEAR(a[36], b[63], std::abs(b[63]) * 1e-3) << dtype_name(type);  // fp16 rounding only
  }
}

// With every input active, the input-sparse product against transposed(W)
// is the dense product with W (exact transposes for the dense types).
TEST(SparseKernels, SparseInputOfTransposedWithAllActiveEqualsMatmul) {
  ThreadPool pool1(1), pool3(3);
  for (DType type : {DType::F32, DType::F16, DType::BF16}) {
    const int64_t n_out = 203, n_in = 333;
    const TestMatrix m = random_matrix(type, n_out, n_in, 31);
    const TestMatrix m_abs = abs_matrix(m.w);
    const WeightMatrix t = transposed(m.w, &pool3);
    std::vector<int32_t> all(static_cast<size_t>(n_in));
    std::iota(all.begin(), all.end(), 0);
    for (int64_t n_tok : {1, 3, 7}) {
      const auto x = normal_floats(size_t(n_tok * n_in), 17 + n_tok);
      std::vector<float> ref(size_t(n_tok * n_out)), l1(ref.size()), y(ref.size()), y_sparse(ref.size());
      matmul_gather_rows_reference(m_abs.w, abs_of(x).data(), n_tok, all.data(), n_out, l1.data());
      for (ThreadPool* pool : {&pool1, &pool3}) {
        matmul(m.w, x.data(), n_tok, y.data(), *pool);
        matmul_sparse_input(t, x.data(), n_tok, all.data(), n_in, y_sparse.data(), *pool);
        // Both are fp32 sums of the same products: 2e-5 for two roundings.
        for (size_t i = 0; i < y.size(); ++i)
          ASSERT_NEAR(y_sparse[i], y[i], 2e-5 * l1[i])
              << dtype_name(type) << " tokens " << n_tok << " threads " << pool->size() << " at " << i;
      }
    }
  }
}

}  // namespace
}  // namespace ffn
