// The gathered-row kernel (kernels/gather_rows_q8.h) on Q8_0 and Q4_0 rows
// re-laid by packed_for_sparse_input, against a scalar emulation of the arithmetic
// it defines: x quantized per block of 32 (QuantizedActivations, its
// portable path: the same bytes as the AVX-512 one), exact integer block
// dots, scaled by d_w * d_x and summed in double. Only the fp32 summation
// order differs, so the tolerance is 1e-5 of each output's sum of
// |d_w d_x w q| (plus a tiny absolute term for outputs near 0). Random
// weights and activations; row lengths 64 to 2112 (block counts not a
// multiple of 16), lists of 1 to all rows, unsorted and with gaps, 1 to 9
// tokens (the 4-token tiles and the 1-token tail), 1 and 2 threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "core/half.h"
#include "core/thread_pool.h"
#include "kernels/convert.h"
#include "kernels/gather_rows_q8.h"
#include "kernels/matmul_quant.h"
#include "kernels/quant_blocks.h"
#include "kernels/sparse_input_q8.h"
#include "kernels/weight_matrix.h"
#include "test_util.h"

namespace ffn {
namespace {

TEST(GatherRowsQ8, MatchesTheScalarEmulation) {
  if (!cpu_has_avx512bw()) GTEST_SKIP() << "needs AVX-512 BW";
  std::vector<QuantPath> paths = {QuantPath::Portable};
  if (cpu_has_vnni()) paths.push_back(QuantPath::Vnni);
  ThreadPool two(2), one(1);
  std::mt19937_64 rng(11);
  for (const DType type : {DType::Q8_0, DType::Q4_0}) {
    for (const int64_t cols : {64, 192, 576, 2112}) {
      const int64_t rows = 37, nb = cols / kQuantBlock;
      std::vector<uint8_t> bytes(dtype_row_bytes(type, uint64_t(cols)) * uint64_t(rows));
      const auto f = test::random_floats(size_t(rows * cols), uint64_t(cols));
      WeightMatrix w{.type = type, .rows = rows, .cols = cols};
      for (int64_t r = 0; r < rows; ++r)
        encode_row(type, f.data() + r * cols, bytes.data() + r * w.row_bytes(), uint64_t(cols));
      w.data = bytes.data();
      const WeightMatrix relaid = packed_for_sparse_input(w);
      ASSERT_NE(relaid.packed, nullptr);
      // Weight j of block b of row r as the signed integer, and the block's scale.
      auto weight = [&](int64_t r, int64_t b, int64_t j) -> int64_t {
        if (type == DType::Q8_0) return reinterpret_cast<const BlockQ8_0*>(w.row(r))[b].qs[j];
        const BlockQ4_0& blk = reinterpret_cast<const BlockQ4_0*>(w.row(r))[b];
        return int64_t(j < 16 ? blk.qs[j] & 0x0f : blk.qs[j - 16] >> 4) - 8;
      };
      auto scale_of = [&](int64_t r, int64_t b) {
        return type == DType::Q8_0 ? f16_to_f32(reinterpret_cast<const BlockQ8_0*>(w.row(r))[b].d)
                                   : f16_to_f32(reinterpret_cast<const BlockQ4_0*>(w.row(r))[b].d);
      };
      for (const int64_t n_tok : {1, 3, 4, 5, 9}) {
        const auto x = test::random_floats(size_t(n_tok * cols), uint64_t(100 + n_tok));
        QuantizedActivations xa;
        xa.quantize(x.data(), n_tok, cols, QuantPath::Portable);
        for (const int64_t n_rows : {int64_t(1), int64_t(7), int64_t(9), int64_t(20), rows}) {
          std::vector<int32_t> list(static_cast<size_t>(rows));
          std::iota(list.begin(), list.end(), 0);
          std::shuffle(list.begin(), list.end(), rng);
          list.resize(size_t(n_rows));
          for (ThreadPool* pool : {&one, &two})
            for (const QuantPath path : paths) {
              std::vector<float> y(static_cast<size_t>(n_tok * n_rows), -7.0f);
              gather_rows_q8(relaid, x.data(), n_tok, list.data(), n_rows, y.data(), *pool, path);
              for (int64_t t = 0; t < n_tok; ++t)
                for (int64_t i = 0; i < n_rows; ++i) {
                  double sum = 0, magnitude = 0;
                  for (int64_t b = 0; b < nb; ++b) {
                    const int64_t row = list[size_t(i)];
                    int64_t dot = 0, abs_dot = 0;
                    for (int64_t j = 0; j < kQuantBlock; ++j) {
                      const int64_t p = weight(row, b, j) * xa.q[size_t((t * nb + b) * kQuantBlock + j)];
                      dot += p;
                      abs_dot += std::abs(p);
                    }
                    const double scale = double(scale_of(row, b)) * double(xa.d[size_t(t * nb + b)]);
                    sum += scale * double(dot);
                    magnitude += std::abs(scale) * double(abs_dot);
                  }
                  EXPECT_NEAR(y[size_t(t * n_rows + i)], sum, 1e-5 * magnitude + 1e-6)
                      << dtype_name(type) << " cols " << cols << " tokens " << n_tok << " rows " << n_rows
                      << " threads " << pool->size() << " path " << int(path) << " t " << t << " i " << i;
                }
            }
        }
      }
    }
  }
}

}  // namespace
}  // namespace ffn
