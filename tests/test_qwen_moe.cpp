// The qwen2moe architecture (Qwen1.5-MoE / Qwen2-MoE as llama.cpp stores
// them) end to end: a synthesized F32 file is run by the engine and by a
// double-precision reference written here from the architecture's
// definition (q/k/v biases, rotate-half RoPE on Hugging Face rows,
// softmax-then-top-k routing without renormalisation, a sigmoid-gated shared
// expert), sharing no code with src/model or src/ffn.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/thread_pool.h"
#include "model/llama_model.h"
#include "model/loaded_model.h"
#include "transform/synthesize.h"
#include "test_util.h"

namespace ffn {
namespace {

using Vec = std::vector<double>;

// Which parts of the architecture the reference applies: each switched off
// must change the logits, so the comparison can catch an engine that skips it.
struct RefParts {
  bool biases = true;
  bool neox_rope = true;
  bool shared_expert = true;
};

class QwenMoeReference {
 public:
  QwenMoeReference(const ModelSource& src, RefParts parts) : src_(src), parts_(parts) {
    const auto& p = src.params;
    d_ = int64_t(p.dim);
    heads_ = int64_t(p.n_heads);
    kv_heads_ = int64_t(p.n_kv_heads);
    hd_ = d_ / heads_;
    layers_ = int64_t(p.n_layers);
    vocab_ = int64_t(p.vocab_size);
    eps_ = p.rms_eps;
    base_ = p.rope_base;
  }

  // Logits of every position of `tokens`, one row per token.
  std::vector<Vec> run(const std::vector<int32_t>& tokens) {
    const int64_t n = int64_t(tokens.size());
    std::vector<Vec> x(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) x[size_t(t)] = row("token_embd.weight", tokens[size_t(t)]);
    for (int64_t l = 0; l < layers_; ++l) {
      std::vector<Vec> q(static_cast<size_t>(n)), k(q.size()), v(q.size());
      for (int64_t t = 0; t < n; ++t) {
        const Vec xn = rmsnorm(x[size_t(t)], name(l, "attn_norm"));
        q[size_t(t)] = linear(name(l, "attn_q"), xn, bias(l, "attn_q"));
        k[size_t(t)] = linear(name(l, "attn_k"), xn, bias(l, "attn_k"));
        v[size_t(t)] = linear(name(l, "attn_v"), xn, bias(l, "attn_v"));
        rope(q[size_t(t)], t);
        rope(k[size_t(t)], t);
      }
      for (int64_t t = 0; t < n; ++t) {
        Vec att(static_cast<size_t>(d_), 0.0);
        for (int64_t h = 0; h < heads_; ++h) {
          const int64_t kvh = h / (heads_ / kv_heads_);
          Vec s(static_cast<size_t>(t + 1));
          for (int64_t j = 0; j <= t; ++j) {
            double dot = 0;
            for (int64_t i = 0; i < hd_; ++i) dot += q[size_t(t)][size_t(h * hd_ + i)] * k[size_t(j)][size_t(kvh * hd_ + i)];
            s[size_t(j)] = dot / std::sqrt(double(hd_));
          }
          const double m = *std::max_element(s.begin(), s.end());
          double z = 0;
          for (auto& e : s) z += (e = std::exp(e - m));
          for (int64_t j = 0; j <= t; ++j)
            for (int64_t i = 0; i < hd_; ++i)
              att[size_t(h * hd_ + i)] += s[size_t(j)] / z * v[size_t(j)][size_t(kvh * hd_ + i)];
        }
        const Vec o = linear(name(l, "attn_output"), att, nullptr);
        for (int64_t i = 0; i < d_; ++i) x[size_t(t)][size_t(i)] += o[size_t(i)];
        const Vec f = moe(l, rmsnorm(x[size_t(t)], name(l, "ffn_norm")));
        for (int64_t i = 0; i < d_; ++i) x[size_t(t)][size_t(i)] += f[size_t(i)];
      }
    }
    std::vector<Vec> logits;
    for (int64_t t = 0; t < n; ++t)
      logits.push_back(linear("output.weight", rmsnorm(x[size_t(t)], "output_norm.weight"), nullptr));
    return logits;
  }

 private:
  static std::string name(int64_t l, const char* what) { return "blk." + std::to_string(l) + "." + what + ".weight"; }

  const float* data(const std::string& tensor) const {
    const WeightTensor& w = src_.get(tensor);
    EXPECT_EQ(w.type, DType::F32) << tensor;
    return reinterpret_cast<const float*>(w.data);
  }
  Vec row(const std::string& tensor, int64_t r) const {
    const int64_t cols = int64_t(src_.get(tensor).cols());
    const float* p = data(tensor) + r * cols;
    return Vec(p, p + cols);
  }
  const float* bias(int64_t l, const char* what) const {
    const std::string b = "blk." + std::to_string(l) + "." + what + ".bias";
    return parts_.biases && src_.find(b) ? data(b) : nullptr;
  }
  // W x (+ b) for W [rows, x.size()] starting at row `first`.
  Vec linear(const std::string& tensor, const Vec& x, const float* b, int64_t first = 0, int64_t rows = -1) const {
    const WeightTensor& w = src_.get(tensor);
    const int64_t cols = int64_t(w.cols());
    if (rows < 0) rows = int64_t(w.rows());
    EXPECT_EQ(cols, int64_t(x.size())) << tensor;
    const float* p = data(tensor);
    Vec y(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      double acc = b ? b[r] : 0.0;
      for (int64_t c = 0; c < cols; ++c) acc += double(p[(first + r) * cols + c]) * x[size_t(c)];
      y[size_t(r)] = acc;
    }
    return y;
  }
  Vec rmsnorm(const Vec& x, const std::string& weight) const {
    double ss = 0;
    for (double e : x) ss += e * e;
    const double inv = 1.0 / std::sqrt(ss / double(x.size()) + eps_);
    const float* w = data(weight);
    Vec y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
    return y;
  }
  // Hugging Face's rotate_half: pairs (i, i + hd/2) within each head; the
  // interleaved convention pairs (2i, 2i+1).
  void rope(Vec& x, int64_t pos) const {
    const int64_t heads = int64_t(x.size()) / hd_, half = hd_ / 2;
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i) {
        const double theta = double(pos) * std::pow(base_, -2.0 * double(i) / double(hd_));
        const int64_t a = h * hd_ + (parts_.neox_rope ? i : 2 * i);
        const int64_t b = h * hd_ + (parts_.neox_rope ? i + half : 2 * i + 1);
        const double x0 = x[size_t(a)], x1 = x[size_t(b)];
        x[size_t(a)] = x0 * std::cos(theta) - x1 * std::sin(theta);
        x[size_t(b)] = x0 * std::sin(theta) + x1 * std::cos(theta);
      }
  }
  // down(silu(gate x) * up x) over rows [first, first + h) of stacked tensors.
  Vec expert(int64_t l, const char* gate, const char* up, const char* down, const Vec& x, int64_t e,
             int64_t h) const {
    const Vec g = linear(name(l, gate), x, nullptr, e * h, h), u = linear(name(l, up), x, nullptr, e * h, h);
    Vec a(static_cast<size_t>(h));
    for (int64_t i = 0; i < h; ++i) a[size_t(i)] = g[size_t(i)] / (1.0 + std::exp(-g[size_t(i)])) * u[size_t(i)];
    return linear(name(l, down), a, nullptr, e * d_, d_);
  }
  Vec moe(int64_t l, const Vec& x) const {
    const Vec logits = linear(name(l, "ffn_gate_inp"), x, nullptr);
    const int64_t E = int64_t(logits.size());
    const auto& exps = src_.get(name(l, "ffn_gate_exps"));
    const int64_t h = int64_t(exps.shape[1]);
    int64_t top_k = 0;
    for (const auto& [key, value] : src_.extra_metadata)
      if (key == src_.arch + ".expert_used_count") top_k = int64_t(value.u);
    const double m = *std::max_element(logits.begin(), logits.end());
    Vec p(static_cast<size_t>(E));
    double z = 0;
    for (int64_t e = 0; e < E; ++e) z += (p[size_t(e)] = std::exp(logits[size_t(e)] - m));
    for (auto& e : p) e /= z;
    std::vector<int64_t> order(static_cast<size_t>(E));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[size_t(a)] > p[size_t(b)]; });
    Vec y(static_cast<size_t>(d_), 0.0);
    for (int64_t j = 0; j < top_k; ++j) {  // weights p_e as they are: no renormalisation
      const int64_t e = order[size_t(j)];
      const Vec o = expert(l, "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps", x, e, h);
      for (int64_t i = 0; i < d_; ++i) y[size_t(i)] += p[size_t(e)] * o[size_t(i)];
    }
    if (parts_.shared_expert && src_.find(name(l, "ffn_gate_shexp"))) {
      const int64_t sh = int64_t(src_.get(name(l, "ffn_gate_shexp")).rows());
      const Vec o = expert(l, "ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp", x, 0, sh);
      const double gate = 1.0 / (1.0 + std::exp(-linear(name(l, "ffn_gate_inp_shexp"), x, nullptr, 0, 1)[0]));
      for (int64_t i = 0; i < d_; ++i) y[size_t(i)] += gate * o[size_t(i)];
    }
    return y;
  }

  const ModelSource& src_;
  RefParts parts_;
  int64_t d_, heads_, kv_heads_, hd_, layers_, vocab_;
  double eps_, base_;
};

double max_abs_diff(const std::vector<Vec>& a, const std::vector<Vec>& b) {
  double m = 0;
  for (size_t t = 0; t < a.size(); ++t)
    for (size_t i = 0; i < a[t].size(); ++i) m = std::max(m, std::abs(a[t][i] - b[t][i]));
  return m;
}

TEST(QwenMoe, SynthesizedFileMatchesTheDoublePrecisionReference) {
  ThreadPool pool(2);
  auto shape = synth_preset("qwen-moe-tiny");
  ASSERT_TRUE(shape);
  const std::string path = test::temp_dir() + "/qwen.gguf";
  write_gguf(synthesize(*shape, DType::F32, 11), path);
  LoadedModel lm = load_model(path);
  ASSERT_EQ(lm.source.arch, "qwen2moe");
  EXPECT_EQ(lm.model->config().rope_style, RopeStyle::NeoX);
  const std::vector<int32_t> tokens = {1, 400, 31999, 7, 1234, 260, 5000, 42, 17000};
  const int64_t n = int64_t(tokens.size());

  const std::vector<Vec> ref = QwenMoeReference(lm.source, {}).run(tokens);
  double scale = 0;
  for (const auto& r : ref)
    for (double v : r) scale = std::max(scale, std::abs(v));
  ASSERT_GT(scale, 0.1);
  const double tol = 1e-4 * scale;

  // Prefill (grouped expert dispatch) and decode (one token at a time).
  KvCache c1 = lm.model->make_cache(16), c2 = lm.model->make_cache(16);
  Tensor all, one;
  lm.model->forward(tokens.data(), n, c1, all, true, pool);
  for (int64_t t = 0; t < n; ++t) {
    lm.model->forward(&tokens[size_t(t)], 1, c2, one, false, pool);
    for (int64_t v = 0; v < all.cols; ++v) {
      ASSERT_NEAR(all.row(t)[v], ref[size_t(t)][size_t(v)], tol) << "prefill token " << t << " logit " << v;
      ASSERT_NEAR(one.data[size_t(v)], ref[size_t(t)][size_t(v)], tol) << "decode token " << t << " logit " << v;
    }
  }

  // Each part of the architecture moves the logits far beyond the tolerance,
  // so an engine that skipped it would fail above.
  for (RefParts off : {RefParts{false, true, true}, RefParts{true, false, true}, RefParts{true, true, false}})
    EXPECT_GT(max_abs_diff(QwenMoeReference(lm.source, off).run(tokens), ref), 100 * tol);
}

TEST(QwenMoe, UnknownArchitectureIsNamed) {
  auto shape = synth_preset("tiny");
  ASSERT_TRUE(shape);
  ModelSource src = synthesize(*shape, DType::F32, 1);
  src.arch = "gemma";
  const std::string path = test::temp_dir() + "/gemma.gguf";
  write_gguf(src, path);
  try {
    load_model(path);
    FAIL() << "loaded an unsupported architecture";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("general.architecture"), std::string::npos) << msg;
    EXPECT_NE(msg.find("qwen2moe"), std::string::npos) << msg;
    EXPECT_NE(msg.find("gemma"), std::string::npos) << msg;
  }
}

TEST(QwenMoe, SynthRejectsAnArchitectureThatDoesNotFitTheShape) {
  auto shape = synth_preset("qwen-moe-tiny");
  ASSERT_TRUE(shape);
  shape->arch = "qwen2";  // qwen2 is dense: llama.cpp would not read the experts
  EXPECT_THROW(synthesize(*shape, DType::F32, 1), Error);
}

}  // namespace
}  // namespace ffn
