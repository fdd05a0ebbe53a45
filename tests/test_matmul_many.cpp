// matmul_many: several products in one pool pass equal the same products
// run one by one (matmul) and the scalar reference, for every weight type,
// odd shapes, mixed types in one call, 1-7 tokens and 1-3 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/weight_matrix.h"
#include "test_util.h"

namespace ffn {
namespace {

WeightMatrix random_weight(DType type, int64_t rows, int64_t cols, uint64_t seed) {
  WeightMatrix w{.type = type, .rows = rows, .cols = cols};
  auto buf = std::make_shared<AlignedVector<uint8_t>>(w.bytes());
  const auto f = test::random_floats(size_t(rows * cols), seed);
  for (int64_t r = 0; r < rows; ++r)
    encode_row(type, f.data() + r * cols, buf->data() + r * w.row_bytes(), uint64_t(cols));
  w.data = buf->data();
  w.owned = buf;
  return w;
}

TEST(MatmulMany, EqualsOneByOneAndTheReference) {
  struct Shape {
    DType type;
    int64_t rows, cols;
  };
  // Mixed types and sizes in one call; Q8_0/Q4_0 need cols % 32 == 0.
  const Shape shapes[] = {{DType::Q8_0, 203, 96}, {DType::F32, 37, 61}, {DType::BF16, 130, 96},
                          {DType::Q4_0, 66, 160}, {DType::F16, 5, 33},  {DType::Q8_0, 1, 64}};
  const int64_t count = std::size(shapes);
  std::vector<WeightMatrix> w;
  for (int64_t j = 0; j < count; ++j) w.push_back(random_weight(shapes[j].type, shapes[j].rows, shapes[j].cols, 10 + j));
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n_tok : {1, 3, 7}) {
      std::vector<std::vector<float>> x, y, one_by_one;
      std::vector<MatmulJob> jobs;
      for (int64_t j = 0; j < count; ++j) {
        x.push_back(test::random_floats(size_t(n_tok * shapes[j].cols), 100 + j + n_tok));
        y.emplace_back(size_t(n_tok * shapes[j].rows), NAN);
        one_by_one.emplace_back(size_t(n_tok * shapes[j].rows));
      }
      for (int64_t j = 0; j < count; ++j) jobs.push_back({&w[size_t(j)], x[size_t(j)].data(), y[size_t(j)].data()});
      matmul_many(jobs.data(), count, n_tok, pool);
      for (int64_t j = 0; j < count; ++j) {
        matmul(w[size_t(j)], x[size_t(j)].data(), n_tok, one_by_one[size_t(j)].data(), pool);
        std::vector<float> ref(one_by_one[size_t(j)].size());
        matmul_reference(shapes[j].type, x[size_t(j)].data(), n_tok, shapes[j].cols, w[size_t(j)].data,
                         shapes[j].rows, ref.data());
        // Quantized types round the activations to int8 on the VNNI path:
        // ~1% of the row's magnitude against the fp32 reference.
        const bool quant = shapes[j].type == DType::Q8_0 || shapes[j].type == DType::Q4_0;
        for (size_t i = 0; i < ref.size(); ++i) {
          ASSERT_NEAR(y[size_t(j)][i], one_by_one[size_t(j)][i], 1e-5 * (1 + std::abs(ref[i])))
              << "job " << j << " threads " << threads << " tokens " << n_tok << " at " << i;
          ASSERT_NEAR(y[size_t(j)][i], ref[i], (quant ? 5e-2 : 1e-4) * (1 + std::abs(ref[i])))
              << "job " << j << " threads " << threads << " tokens " << n_tok << " at " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace ffn
