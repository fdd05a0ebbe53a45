// Mixture-of-experts hyper-parameters and layers as GGUF files carry them.
//
// llama.cpp's keys (arch = general.architecture):
//   {arch}.expert_count, {arch}.expert_used_count (top-k),
//   {arch}.expert_feed_forward_length (else feed_forward_length, as llama.cpp
//   reads Mixtral-style llama files), {arch}.expert_weights_norm (default:
//   true for llama, whose llama.cpp graph always renormalises),
//   {arch}.expert_gating_func (1 softmax, 2 sigmoid);
// and tensors blk.N.ffn_gate_inp (router [E, d]; optional bias
// blk.N.ffn_gate_inp.bias [E]), ffn_{gate,up}_exps
// [E, hidden, d], ffn_down_exps [E, d, hidden], shared experts
// ffn_{gate,up}_shexp [shared, d], ffn_down_shexp [d, shared] and
// ffn_gate_inp_shexp [d].
//
// ffn.cpp's own keys, for what llama.cpp has no name for:
//   ffn.moe.gating = "unit" (dense FFNs split into experts), "softmax",
//   "sigmoid"; ffn.moe.order = "softmax-topk" | "topk-softmax";
//   ffn.moe.zero_experts / copy_experts / const_experts (MoE++), with tensors
//   blk.N.ffn_const_exps [C, d] (constant vectors), ffn_const_gate [C, 2, d]
//   and, for gating residuals, ffn_gate_res [N, N] (N = routed experts).
#pragma once

#include <memory>
#include <optional>

#include "ffn/moe_ffn.h"
#include "io/model_source.h"
#include "model/llama_config.h"
#include "model/llama_model.h"

namespace ffn {

struct MoeParams {
  int64_t n_experts = 0;  // FFN experts
  int64_t expert_hidden = 0;
  int64_t n_zero = 0, n_copy = 0, n_const = 0;
  MoeRouting routing;  // top_k = expert_used_count
  int64_t n_routed() const { return n_experts + n_zero + n_copy + n_const; }
};

// nullopt for a dense model. Errors name the file and the key.
std::optional<MoeParams> read_moe_params(const ModelSource& src, const LlamaConfig& c);

// Sets (replacing) the keys above in out.extra_metadata.
void write_moe_params(ModelSource& out, const MoeParams& p);

// Removes every key above from out.extra_metadata (a model made dense).
void erase_moe_params(ModelSource& out);

// Sets every MoE layer's top-k (`--moe-top-k`). Throws ffn::Error naming
// `what` when the model has no MoE layer or k is outside 1..routed experts.
void set_moe_top_k(LlamaModel& model, int64_t k, const std::string& what = "--moe-top-k");
// The top-k of the model's first MoE layer; 0 for a dense model.
int64_t moe_top_k(const LlamaModel& model);

// Layer `layer`'s MoE FFN, every tensor's presence and shape checked
// (errors name the file and tensor); null when the layer has no router
// (a dense layer of a mixed model). With pack_pool, the experts' matrices
// are packed for the VNNI kernel (kernels/packed_quant.h) on that pool.
std::unique_ptr<MoeFfn> load_moe_layer(const ModelSource& src, int64_t layer, const LlamaConfig& c,
                                       const MoeParams& p, MoeMeter* meter, ThreadPool* pack_pool = nullptr);

}  // namespace ffn
