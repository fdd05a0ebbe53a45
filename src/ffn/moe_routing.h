// Mixture-of-experts routing: from router logits to each token's experts and
// their mixing weights. The conventions of the open MoE models:
//  - Switch / OLMoE / Qwen-MoE: p = softmax(logits) over all experts, keep the
//    top-k, optionally renormalise the kept p to sum 1;
//  - Mixtral: keep the top-k logits, softmax over those k (equal to the first
//    with renormalisation, computed in a different order);
//  - sigmoid gating (DeepSeek-V3 style): p = sigmoid(logits), top-k, optional
//    renormalisation;
//  - unit gating: the kept experts get weight 1. Dense FFNs split into
//    experts (MoEfication, FactorLLM) use it, so that keeping every expert
//    sums the groups back into exactly the dense FFN.
#pragma once

#include <cstdint>
#include <string>

namespace ffn {

enum class MoeGating { Softmax, Sigmoid, Unit };
enum class MoeOrder { SoftmaxThenTopK, TopKThenSoftmax };

struct MoeRouting {
  int64_t top_k = 1;
  MoeGating gating = MoeGating::Softmax;
  MoeOrder order = MoeOrder::SoftmaxThenTopK;  // TopKThenSoftmax needs Softmax gating
  bool renormalize = false;                    // kept weights divided by their sum
};

const char* moe_gating_name(MoeGating g);
const char* moe_order_name(MoeOrder o);
// "softmax" | "sigmoid" | "unit"; "softmax-topk" | "topk-softmax". Throw
// ffn::Error naming `what` and the accepted values.
MoeGating parse_moe_gating(const std::string& s, const std::string& what);
MoeOrder parse_moe_order(const std::string& s, const std::string& what);

// For each of n_tok tokens, logits[t * n_experts .. +n_experts) -> the top_k
// experts ids[t * top_k + j] (by decreasing logit; ties by lower id) and their
// weights[t * top_k + j]. Requires 1 <= top_k <= n_experts.
void route_tokens(const float* logits, int64_t n_tok, int64_t n_experts, const MoeRouting& routing,
                  int32_t* ids, float* weights);

}  // namespace ffn
