// Dense -> mixture of experts: split each FFN's intermediate neurons into E
// equal groups, each group an expert, with a router that predicts which
// groups a token needs. (Zhang et al., "MoEfication: Transformer
// Feed-forward Layers are Mixtures of Experts", 2022; Zhao et al.,
// "FactorLLM: Factorizing Knowledge via Mixture of Experts for Large
// Language Models", 2024; Dense2MoE's importance-based shared experts.)
//
// Splits (the `split=` option):
//  - cluster: balanced spherical k-means on each neuron's weight vector
//    [w_gate_i ; w_up_i] (MoEfication's parameter clustering);
//  - coact: balanced k-means on each neuron's activation pattern |h_i(t)|
//    over calibration tokens, so neurons that fire together share an expert
//    (MoEfication's co-activation split);
//  - taylor: neurons ranked by a first-order Taylor importance of the FFN
//    output, I_i = E_t |h_i(t)| * ||W_down[:, i]|| (the change of y when
//    neuron i is removed), and cut into E tiers of equal size.
// "Balanced": every group gets exactly ceil(hidden / E) slots; slots left
// over when E does not divide hidden are zero neurons (zero gate/up rows and
// down columns), which add exactly 0.
//
// Shared experts (`shared=S`): the S groups of largest total importance are
// always on, stored concatenated as one shared FFN.
//
// Router (MoEfication's learned router, fitted in closed form instead of by
// SGD): a linear map R [E, d] minimising sum_t ||R x_t - m_t||^2 + lambda
// ||R||^2, where m_t[e] = sum over neurons i of group e of |h_i(t)| is the
// group's activation mass on calibration token t. Tokens take the top_k
// groups by predicted mass, each with weight 1 (unit gating): keeping all
// groups gives back the dense FFN (exactly up to float summation order).
//
// MoE++ zero experts (`zero=Z`, Jin et al. 2024) make the number of groups
// adapt per token: Z experts that output 0, whose router logit is a constant
// tau (router row 0, bias tau). A picked group whose predicted mass is below
// tau loses its slot to a zero expert and is not computed. tau is the median,
// over calibration tokens, of the top_k-th largest predicted mass: half the
// tokens drop at least their weakest group (stories260K, 8/4 with 4 zero
// experts: 2.99 groups per token at layer 0).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/model_source.h"

namespace ffn {

class LlamaModel;
class ThreadPool;
struct FfnActivations;

enum class ExpertSplit { Cluster, Coact, Taylor };

struct MoeConversionSpec {
  int64_t experts = 8;  // groups per layer, shared ones included
  int64_t top_k = 2;    // routed experts per token
  int64_t shared = 0;   // always-on groups
  int64_t zero = 0;     // MoE++ zero experts (adaptive number of groups per token)
  ExpertSplit split = ExpertSplit::Cluster;
  std::string text;     // as given, for labels
};

// "moe:experts=16,top_k=4[,shared=1][,split=cluster|coact|taylor][,zero=Z]"
// or the short form "moe:16/4[/coact][/s1][/z2]" (for --variants lists). Errors name
// `what` and the field.
MoeConversionSpec parse_moe_conversion(const std::string& text, const std::string& what = "--ffn");
const char* expert_split_name(ExpertSplit s);

// Balanced spherical k-means: assigns n unit vectors (rows of `features`,
// [n, dim]) to k groups of at most `capacity` each (k * capacity >= n), by
// greedy capacity-constrained assignment of the closest (neuron, centroid)
// pairs, `iterations` times. Deterministic in `seed`.
std::vector<int32_t> balanced_kmeans(const std::vector<float>& features, int64_t n, int64_t dim, int64_t k,
                                     int64_t capacity, int iterations, uint64_t seed, ThreadPool& pool);

// The MoE model: src with every layer's ffn_gate/ffn_up/ffn_down replaced by
// a router, stacked experts (the same weight type; a down projection whose
// expert width is not a multiple of 32 is stored F16 for Q8_0/Q4_0) and
// shared experts, plus the MoE metadata (model/moe_params.h). `model` is the
// dense model loaded from src; `acts` its activations on calibration text.
ModelSource dense_to_moe(const ModelSource& src, const LlamaModel& model, const FfnActivations& acts,
                         const MoeConversionSpec& spec, ThreadPool& pool);

}  // namespace ffn
