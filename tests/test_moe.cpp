// Mixture-of-experts execution: routing conventions, grouped dispatch
// against a naive per-token reference (double precision, written from the
// definitions, sharing no code with ffn/moe_ffn.cpp), MoE++ zero-computation
// experts and gating residuals, and E = 1, K = 1 against the dense FFN.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <cstring>
#include <numeric>
#include <random>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "ffn/gated_ffn.h"
#include "ffn/moe_ffn.h"
#include "ffn/moe_routing.h"
#include "kernels/convert.h"
#include "test_util.h"

namespace ffn {
namespace {

using test::random_floats;

// A [rows, cols] matrix of uniform weights times `scale`, encoded as `type`.
WeightMatrix random_weight(DType type, int64_t rows, int64_t cols, uint64_t seed, float scale = 1.0f) {
  WeightMatrix w{.type = type, .rows = rows, .cols = cols};
  auto buf = std::make_shared<AlignedVector<uint8_t>>(w.bytes());
  auto f = random_floats(size_t(rows * cols), seed);
  for (auto& v : f) v *= scale;
  for (int64_t r = 0; r < rows; ++r)
    encode_row(type, f.data() + r * cols, buf->data() + r * w.row_bytes(), uint64_t(cols));
  w.data = buf->data();
  w.owned = buf;
  return w;
}

std::vector<double> row_of(const WeightMatrix& w, int64_t r) {
  std::vector<float> f(static_cast<size_t>(w.cols));
  read_row(w, r, f.data());
  return {f.begin(), f.end()};
}

double dot(const std::vector<double>& a, const float* x) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * x[i];
  return s;
}

// One gated FFN on one token, in double: down . (silu(gate . x) * (up . x)).
std::vector<double> reference_gated(const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down,
                                    int64_t row0, int64_t down_row0, int64_t hidden, int64_t d, const float* x) {
  std::vector<float> mid(static_cast<size_t>(hidden));
  for (int64_t i = 0; i < hidden; ++i) {
    const double g = dot(row_of(gate, row0 + i), x), u = dot(row_of(up, row0 + i), x);
    mid[size_t(i)] = float(g / (1.0 + std::exp(-g)) * u);
  }
  std::vector<double> y(static_cast<size_t>(d));
  for (int64_t o = 0; o < d; ++o) y[size_t(o)] = dot(row_of(down, down_row0 + o), mid.data());
  return y;
}

// The MoE layer for each token separately, from the definitions.
void reference_moe(const MoeWeights& w, const MoeRouting& r, const float* x, int64_t n, const float* prev_logits,
                   std::vector<double>& y, std::vector<double>& logits) {
  const int64_t d = w.router.cols, N = w.n_routed(), E = w.n_experts, k = r.top_k;
  y.assign(size_t(n * d), 0.0);
  logits.assign(size_t(n * N), 0.0);
  for (int64_t t = 0; t < n; ++t) {
    const float* xt = x + t * d;
    double* l = logits.data() + t * N;
    for (int64_t e = 0; e < N; ++e) {
      l[e] = dot(row_of(w.router, e), xt);
      if (w.gating_residual.data) l[e] += dot(row_of(w.gating_residual, e), prev_logits + t * N);
    }
    std::vector<int64_t> ids(static_cast<size_t>(N));
    std::iota(ids.begin(), ids.end(), 0);
    std::stable_sort(ids.begin(), ids.end(), [&](int64_t a, int64_t b) { return l[a] > l[b]; });
    ids.resize(size_t(k));
    std::vector<double> gw(static_cast<size_t>(k));
    double z = 0;
    for (int64_t e = 0; e < N; ++e) z += std::exp(l[e]);
    double zk = 0;
    for (int64_t j = 0; j < k; ++j) zk += std::exp(l[ids[j]]);
    for (int64_t j = 0; j < k; ++j) {
      const double v = l[ids[j]];
      switch (r.gating) {
        case MoeGating::Unit: gw[j] = 1; break;
        case MoeGating::Sigmoid: gw[j] = 1 / (1 + std::exp(-v)); break;
        case MoeGating::Softmax: gw[j] = std::exp(v) / (r.order == MoeOrder::TopKThenSoftmax ? zk : z); break;
      }
    }
    if (r.renormalize && r.gating != MoeGating::Unit) {
      const double s = std::accumulate(gw.begin(), gw.end(), 0.0);
      for (auto& v : gw) v /= s;
    }
    double* yt = y.data() + t * d;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t e = ids[j];
      if (e < E) {
        const auto o = reference_gated(w.gate_exps, w.up_exps, w.down_exps, e * w.expert_hidden, e * d,
                                       w.expert_hidden, d, xt);
        for (int64_t i = 0; i < d; ++i) yt[i] += gw[j] * o[size_t(i)];
      } else if (e < E + w.n_zero) {
      } else if (e < E + w.n_zero + w.n_copy) {
        for (int64_t i = 0; i < d; ++i) yt[i] += gw[j] * xt[i];
      } else {
        const int64_t c = e - E - w.n_zero - w.n_copy;
        double g[2];
        for (int h = 0; h < 2; ++h) {
          g[h] = 0;
          for (int64_t i = 0; i < d; ++i) g[h] += double(w.const_gates[size_t((c * 2 + h) * d + i)]) * xt[i];
        }
        const double a0 = 1 / (1 + std::exp(g[1] - g[0])), a1 = 1 - a0;
        for (int64_t i = 0; i < d; ++i)
          yt[i] += gw[j] * (a0 * xt[i] + a1 * w.const_vectors[size_t(c * d + i)]);
      }
    }
    if (w.shared) {
      const GatedFfn& s = *w.shared;
      const auto o = reference_gated(s.gate(), s.up(), s.down(), 0, 0, s.hidden(), d, xt);
      double g = 1;
      if (!w.shared_gate.empty()) {
        double a = 0;
        for (int64_t i = 0; i < d; ++i) a += double(w.shared_gate[size_t(i)]) * xt[i];
        g = 1 / (1 + std::exp(-a));
      }
      for (int64_t i = 0; i < d; ++i) yt[i] += g * o[size_t(i)];
    }
  }
}

struct MoeShape {
  int64_t d = 40, hidden = 24, experts = 6, zero = 0, copy = 0, constant = 0, shared_hidden = 0;
  bool shared_gate = false, residual = false;
};

MoeWeights random_moe(const MoeShape& s, DType type, uint64_t seed) {
  MoeWeights w;
  w.n_experts = s.experts;
  w.expert_hidden = s.hidden;
  w.n_zero = s.zero;
  w.n_copy = s.copy;
  w.n_const = s.constant;
  const int64_t N = w.n_routed();
  w.router = random_weight(DType::F32, N, s.d, seed, 0.5f);
  w.gate_exps = random_weight(type, s.experts * s.hidden, s.d, seed + 1, 0.3f);
  w.up_exps = random_weight(type, s.experts * s.hidden, s.d, seed + 2, 0.3f);
  w.down_exps = random_weight(type, s.experts * s.d, s.hidden, seed + 3, 0.3f);
  w.const_vectors = random_floats(size_t(s.constant * s.d), seed + 4);
  w.const_gates = random_floats(size_t(s.constant * 2 * s.d), seed + 5);
  if (s.residual) w.gating_residual = random_weight(DType::F32, N, N, seed + 6, 0.5f);
  if (s.shared_hidden) {
    w.shared.emplace(random_weight(type, s.shared_hidden, s.d, seed + 7, 0.3f),
                     random_weight(type, s.shared_hidden, s.d, seed + 8, 0.3f),
                     random_weight(type, s.d, s.shared_hidden, seed + 9, 0.3f));
    if (s.shared_gate) w.shared_gate = random_floats(size_t(s.d), seed + 10);
  }
  return w;
}

void expect_close(const Tensor& got, const std::vector<double>& want, double rel_tol, const char* what) {
  ASSERT_EQ(size_t(got.rows * got.cols), want.size()) << what;
  double scale = 0;
  for (double v : want) scale = std::max(scale, std::abs(v));
  ASSERT_GT(scale, 1e-3) << what << ": reference output is ~0, the test would prove nothing";
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got.data[i], want[i], rel_tol * scale) << what << " at " << i;
}

TEST(MoeRouting, MixtralOrderEqualsRenormalizedSoftmax) {
  const auto logits = random_floats(7 * 9, 11);
  std::vector<int32_t> ids_a(7 * 3), ids_b(7 * 3);
  std::vector<float> w_a(7 * 3), w_b(7 * 3);
  MoeRouting a{3, MoeGating::Softmax, MoeOrder::SoftmaxThenTopK, true};
  MoeRouting b{3, MoeGating::Softmax, MoeOrder::TopKThenSoftmax, false};
  route_tokens(logits.data(), 7, 9, a, ids_a.data(), w_a.data());
  route_tokens(logits.data(), 7, 9, b, ids_b.data(), w_b.data());
  EXPECT_EQ(ids_a, ids_b);
  for (size_t i = 0; i < w_a.size(); ++i) EXPECT_NEAR(w_a[i], w_b[i], 1e-6);
  for (int t = 0; t < 7; ++t) {
    EXPECT_NEAR(w_a[t * 3] + w_a[t * 3 + 1] + w_a[t * 3 + 2], 1.0, 1e-6);
    EXPECT_GE(logits[t * 9 + ids_a[t * 3]], logits[t * 9 + ids_a[t * 3 + 1]]);
  }
}

TEST(MoeRouting, TiesGoToTheLowerIdAndUnitGatingWeighsOne) {
  const std::vector<float> logits = {0.5f, 2.0f, 2.0f, -1.0f};
  int32_t ids[2];
  float w[2];
  route_tokens(logits.data(), 1, 4, {2, MoeGating::Unit, MoeOrder::SoftmaxThenTopK, true}, ids, w);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 2);
  EXPECT_EQ(w[0], 1.0f);
  EXPECT_EQ(w[1], 1.0f);
  route_tokens(logits.data(), 1, 4, {2, MoeGating::Sigmoid, MoeOrder::SoftmaxThenTopK, false}, ids, w);
  EXPECT_NEAR(w[0], 1 / (1 + std::exp(-2.0)), 1e-6);
}

struct MoeCase {
  const char* name;
  MoeShape shape;
  MoeRouting routing;
  DType type;
  double tol;
};

class MoeAgainstReference : public ::testing::TestWithParam<MoeCase> {};

TEST_P(MoeAgainstReference, GroupedDispatchEqualsPerTokenReference) {
  const MoeCase& c = GetParam();
  ThreadPool pool(3);
  MoeMeter meter;
  MoeFfn moe(random_moe(c.shape, c.type, 100), c.routing, &meter);
  for (int64_t n : {1, 5, 19}) {
    Tensor x(n, c.shape.d);
    const auto xs = random_floats(size_t(n * c.shape.d), 7 + uint64_t(n));
    std::copy(xs.begin(), xs.end(), x.data.begin());
    Scratch s;
    // Gating residuals read the previous layer's logits from the scratch.
    const auto prev = random_floats(size_t(n * moe.weights().n_routed()), 3);
    s.moe.prev_logits.resize(n, moe.weights().n_routed());
    std::copy(prev.begin(), prev.end(), s.moe.prev_logits.data.begin());
    Tensor y;
    meter.reset();
    moe.forward(x, y, s, pool);
    std::vector<double> want, want_logits;
    reference_moe(moe.weights(), c.routing, x.ptr(), n, prev.data(), want, want_logits);
    expect_close(y, want, c.tol, c.name);
    // The logits left for the next layer include the residual.
    for (size_t i = 0; i < want_logits.size(); ++i)
      ASSERT_NEAR(s.moe.prev_logits.data[i], want_logits[i], 1e-4 * (1 + std::abs(want_logits[i])));
    EXPECT_EQ(meter.tokens, uint64_t(n));
    EXPECT_EQ(meter.slots(), uint64_t(n * c.routing.top_k));
    // One token at a time through the same layer gives the same rows.
    for (int64_t t = 0; t < n; ++t) {
      Tensor xt(1, c.shape.d), yt;
      std::copy(x.row(t), x.row(t) + c.shape.d, xt.data.begin());
      Scratch st;
      st.moe.prev_logits.resize(1, moe.weights().n_routed());
      std::copy(prev.begin() + t * moe.weights().n_routed(), prev.begin() + (t + 1) * moe.weights().n_routed(),
                st.moe.prev_logits.data.begin());
      moe.forward(xt, yt, st, pool);
      for (int64_t i = 0; i < c.shape.d; ++i) ASSERT_NEAR(yt.data[i], y.row(t)[i], 1e-5 * (1 + std::abs(y.row(t)[i])));
    }
  }
}

MoeShape with(MoeShape s, auto&& edit) {
  edit(s);
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Variants, MoeAgainstReference,
    ::testing::Values(
        MoeCase{"softmax_top2_f32", {}, {2, MoeGating::Softmax, MoeOrder::SoftmaxThenTopK, false}, DType::F32, 1e-4},
        MoeCase{"mixtral_top2_f32", {}, {2, MoeGating::Softmax, MoeOrder::TopKThenSoftmax, false}, DType::F32, 1e-4},
        MoeCase{"sigmoid_renorm_top3_bf16", {}, {3, MoeGating::Sigmoid, MoeOrder::SoftmaxThenTopK, true},
                DType::BF16, 1e-4},
        MoeCase{"unit_all_experts_f32", {}, {6, MoeGating::Unit, MoeOrder::SoftmaxThenTopK, false}, DType::F32, 1e-4},
        MoeCase{"shared_gated_q8_0", with(MoeShape{}, [](MoeShape& s) { s.d = 64; s.hidden = 32; s.shared_hidden = 96; s.shared_gate = true; }),
                {2, MoeGating::Softmax, MoeOrder::SoftmaxThenTopK, true}, DType::Q8_0, 3e-2},
        MoeCase{"moepp_zero_copy_const_residual_f32",
                with(MoeShape{}, [](MoeShape& s) { s.zero = 1; s.copy = 1; s.constant = 2; s.residual = true; }),
                {3, MoeGating::Softmax, MoeOrder::SoftmaxThenTopK, false}, DType::F32, 1e-4},
        MoeCase{"moepp_q4_0_shared",
                with(MoeShape{}, [](MoeShape& s) { s.d = 64; s.hidden = 64; s.zero = 2; s.constant = 1; s.shared_hidden = 32; }),
                {2, MoeGating::Softmax, MoeOrder::SoftmaxThenTopK, true}, DType::Q4_0, 6e-2}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(MoeFfn, OneExpertTopOneEqualsTheDenseFfn) {
  ThreadPool pool(2);
  MoeShape shape;
  shape.experts = 1;
  MoeWeights w = random_moe(shape, DType::F32, 5);
  GatedFfn dense(w.gate_exps, w.up_exps, w.down_exps);
  MoeFfn moe(w, {1, MoeGating::Softmax, MoeOrder::SoftmaxThenTopK, false});
  Tensor x(9, shape.d), y_moe, y_dense;
  const auto xs = random_floats(size_t(9 * shape.d), 2);
  std::copy(xs.begin(), xs.end(), x.data.begin());
  Scratch s1, s2;
  moe.forward(x, y_moe, s1, pool);
  dense.forward(x, y_dense, s2, pool);
  ASSERT_EQ(y_moe.data.size(), y_dense.data.size());
  for (size_t i = 0; i < y_dense.data.size(); ++i) ASSERT_EQ(y_moe.data[i], y_dense.data[i]) << i;
}

TEST(MoeFfn, ZeroExpertsCutTheMeteredFfnSlots) {
  ThreadPool pool(1);
  MoeShape shape;
  shape.zero = 1;
  MoeWeights w = random_moe(shape, DType::F32, 9);
  // Make the zero expert's router row win for every token whose x[0] > 0.
  auto router = std::make_shared<AlignedVector<uint8_t>>(w.router.bytes());
  std::memcpy(router->data(), w.router.data, w.router.bytes());
  float* zero_row = reinterpret_cast<float*>(router->data()) + shape.experts * shape.d;
  std::fill(zero_row, zero_row + shape.d, 0.0f);
  zero_row[0] = 100.0f;
  w.router.data = router->data();
  w.router.owned = router;
  MoeMeter meter;
  MoeFfn moe(w, {2, MoeGating::Softmax, MoeOrder::SoftmaxThenTopK, false}, &meter);
  Tensor x(64, shape.d), y;
  const auto xs = random_floats(size_t(64 * shape.d), 4);
  std::copy(xs.begin(), xs.end(), x.data.begin());
  int positive = 0;
  for (int t = 0; t < 64; ++t) positive += x.row(t)[0] > 0;
  Scratch s;
  moe.forward(x, y, s, pool);
  EXPECT_EQ(meter.zero_slots, uint64_t(positive));
  EXPECT_EQ(meter.ffn_slots, uint64_t(2 * 64 - positive));
}

}  // namespace
}  // namespace ffn
