// Upcycling and averaging: the two directions between one dense FFN and a
// mixture of experts made of its copies.
//
// upcycle (Komatsuzaki et al., "Sparse Upcycling", 2023; used by BAM,
// "Branch-Attend-Mix", and CLIP-MoE): every expert starts as a copy of the
// dense FFN, optionally perturbed by Gaussian noise of `noise` times each
// matrix's RMS so that training can tell the copies apart, with a new router
// N(0, 1/d). Softmax gating renormalised over the top-k: with noise 0 the
// weights sum to 1 and the layer equals the dense FFN whatever the router
// says.
//
// average (expert weight averaging, EWA; also the "merge" of
// Branch-Train-Merge): each MoE layer collapses into one dense FFN whose
// gate, up and down are the means of its experts' (always-on shared experts
// are appended as extra neurons, which is exact). The averaged routed part
// is scaled by the expected sum of routing weights (top_k for unit gating,
// 1 for renormalised weights).
#pragma once

#include <cstdint>
#include <string>

#include "io/model_source.h"

namespace ffn {

class LlamaModel;

struct UpcycleSpec {
  int64_t experts = 8;
  int64_t top_k = 2;
  double noise = 0.0;
  uint64_t seed = 1;
};

// "upcycle:experts=E,top_k=K[,noise=S][,seed=N]" or "upcycle:E/K".
UpcycleSpec parse_upcycle(const std::string& text, const std::string& what = "--ffn");

// `model` is the dense model loaded from src.
ModelSource upcycle(const ModelSource& src, const LlamaModel& model, const UpcycleSpec& spec);

// `model` is the MoE model loaded from src; dense layers are kept.
ModelSource average_experts(const ModelSource& src, const LlamaModel& model);

}  // namespace ffn
