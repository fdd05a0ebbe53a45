// attend_head against a double-precision reference on random data: head
// widths below, at and above a vector (8, 19, 64, 80, 128 floats), cache
// rows wider than a head (stride), and 1 to 1000 positions.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/attention_head.h"
#include "test_util.h"

namespace ffn {
namespace {

TEST(AttentionHead, MatchesDoubleReference) {
  for (int64_t head_dim : {8, 19, 64, 80, 128})
    for (int64_t n_pos : {1, 3, 17, 100, 1000}) {
      const int64_t stride = head_dim * 3 + 5;  // three heads and a gap per cache row
      const auto keys = test::random_floats(size_t(n_pos * stride), 11 + n_pos + head_dim);
      const auto values = test::random_floats(size_t(n_pos * stride), 13 + n_pos + head_dim);
      auto q = test::random_floats(size_t(head_dim), 17 + head_dim);
      for (float& v : q) v *= 4.0f;  // peaked softmax as well as flat ones (scale below)
      for (float scale : {0.05f, 1.0f / std::sqrt(float(head_dim))}) {
        // The second KV head of each row: the kernel must honour the offset.
        const float* k = keys.data() + head_dim;
        const float* v = values.data() + head_dim;
        std::vector<float> scores(static_cast<size_t>(n_pos)), out(static_cast<size_t>(head_dim), NAN),
            ref(static_cast<size_t>(head_dim));
        attend_head(q.data(), k, v, stride, n_pos, head_dim, scale, scores.data(), out.data());
        attend_head_reference(q.data(), k, v, stride, n_pos, head_dim, scale, ref.data());
        // fp32 sums of n_pos products of values in [-1, 1]: error ~ eps * sqrt(n_pos) plus the exp's.
        const double tol = 2e-6 * (4 + std::sqrt(double(n_pos)) + std::sqrt(double(head_dim)));
        for (int64_t i = 0; i < head_dim; ++i)
          ASSERT_NEAR(out[size_t(i)], ref[size_t(i)], tol)
              << "head_dim " << head_dim << " positions " << n_pos << " scale " << scale << " at " << i;
      }
    }
}

// One position: the output is that position's value row exactly (p = 1).
TEST(AttentionHead, OnePositionReturnsItsValue) {
  const auto k = test::random_floats(64, 1), v = test::random_floats(64, 2), q = test::random_floats(64, 3);
  std::vector<float> scores(1), out(64);
  attend_head(q.data(), k.data(), v.data(), 64, 1, 64, 0.125f, scores.data(), out.data());
  for (int i = 0; i < 64; ++i) ASSERT_EQ(out[size_t(i)], v[size_t(i)]) << i;
}

}  // namespace
}  // namespace ffn
