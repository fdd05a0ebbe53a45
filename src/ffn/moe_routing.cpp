#include "ffn/moe_routing.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "core/error.h"

namespace ffn {

const char* moe_gating_name(MoeGating g) {
  switch (g) {
    case MoeGating::Softmax: return "softmax";
    case MoeGating::Sigmoid: return "sigmoid";
    case MoeGating::Unit: return "unit";
  }
  return "?";
}

const char* moe_order_name(MoeOrder o) {
  return o == MoeOrder::SoftmaxThenTopK ? "softmax-topk" : "topk-softmax";
}

MoeGating parse_moe_gating(const std::string& s, const std::string& what) {
  if (s == "softmax") return MoeGating::Softmax;
  if (s == "sigmoid") return MoeGating::Sigmoid;
  if (s == "unit") return MoeGating::Unit;
  fail(what, "expected softmax, sigmoid or unit, got \"" + s + "\"");
}

MoeOrder parse_moe_order(const std::string& s, const std::string& what) {
  if (s == "softmax-topk") return MoeOrder::SoftmaxThenTopK;
  if (s == "topk-softmax") return MoeOrder::TopKThenSoftmax;
  fail(what, "expected softmax-topk or topk-softmax, got \"" + s + "\"");
}

void route_tokens(const float* logits, int64_t n_tok, int64_t n_experts, const MoeRouting& r, int32_t* ids,
                  float* weights) {
  const int64_t k = r.top_k;
  if (k < 1 || k > n_experts) throw std::invalid_argument("route_tokens: top_k out of range");
  // Reused across calls: routing runs once per MoE layer and token batch.
  thread_local std::vector<int32_t> order;
  order.resize(static_cast<size_t>(n_experts));
  for (int64_t t = 0; t < n_tok; ++t) {
    const float* l = logits + t * n_experts;
    // Selection by logit is the same as by softmax or sigmoid probability
    // (both monotonic), so every gating selects first and weighs after.
    for (int64_t e = 0; e < n_experts; ++e) order[e] = int32_t(e);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      return l[a] > l[b] || (l[a] == l[b] && a < b);
    });
    int32_t* out_ids = ids + t * k;
    float* w = weights + t * k;
    for (int64_t j = 0; j < k; ++j) out_ids[j] = order[j];
    switch (r.gating) {
      case MoeGating::Unit:
        for (int64_t j = 0; j < k; ++j) w[j] = 1.0f;
        break;
      case MoeGating::Sigmoid:
        for (int64_t j = 0; j < k; ++j) w[j] = 1.0f / (1.0f + std::exp(-l[out_ids[j]]));
        break;
      case MoeGating::Softmax: {
        // Over all experts, or (Mixtral) over the kept k only.
        const float mx = l[out_ids[0]];
        double sum = 0;
        
        if (r.order == MoeOrder::TopKThenSoftmax) {
          for (int64_t j = 0; j < k; ++j) sum += std::exp(double(l[out_ids[j]] - mx));
        } else {
          for (int64_t e = 0; e < n_experts; ++e) sum += std::exp(double(l[e] - mx));
        }
        for (int64_t j = 0; j < k; ++j) w[j] = float(std::exp(double(l[out_ids[j]] - mx)) / sum);
        break;
      }
    }
    if (r.renormalize && r.gating != MoeGating::Unit) {
      double s = 0;
      for (int64_t j = 0; j < k; ++j) s += w[j];
      if (s > 0)
        for (int64_t j = 0; j < k; ++j) w[j] = float(w[j] / s);
    }
  }
}

}  // namespace ffn
