// Mixture-of-experts FFN: y = sum over the token's top-k routed experts of
// w_e * E_e(x)  +  shared experts. (Shazeer et al., "Outrageously Large
// Neural Networks", 2017; Fedus et al., "Switch Transformers", 2021; Jiang
// et al., "Mixtral of Experts", 2024.)
//
// FFN experts are gated (SwiGLU) FFNs stored stacked as GGUF does:
// ffn_gate_exps / ffn_up_exps [E, hidden, d] and ffn_down_exps [E, d, hidden],
// viewed here as [E*hidden, d] and [E*d, hidden] matrices whose row block e is
// expert e. One token reads only its selected experts' rows.
//
// Dispatch is dropless and grouped: the tokens of a batch are sorted by
// expert, each expert runs one matrix-matrix product over its tokens, and
// the weighted outputs are scattered back (added) to their tokens.
//
// MoE++ (Jin et al., "MoE++: Accelerating Mixture-of-Experts Methods with
// Zero-Computation Experts", 2024) adds experts that cost no FFN:
//   zero expert: E(x) = 0 (the slot is discarded);
//   copy expert: E(x) = x (skip);
//   constant expert i: E(x) = a1 * x + a2 * v_i, [a1, a2] = softmax(W_i x)
//     with a trained vector v_i and a 2-way gate W_i [2, d];
// and gating residuals: router logits G_l = Wr_l x + Wg_l G_{l-1}, so a token
// sees the path it took in the previous layer. Router rows are ordered
// [FFN experts | zero | copy | constant].
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "ffn/feed_forward.h"
#include "ffn/gated_ffn.h"
#include "ffn/moe_meter.h"
#include "ffn/moe_routing.h"
#include "kernels/weight_matrix.h"

namespace ffn {

struct MoeWeights {
  WeightMatrix router;  // [n_routed(), d]
  // Optional router bias [n_routed()]: converted models give their zero
  // experts a constant logit, so a token whose weakest picked group is
  // predicted below it skips that group (compute adapts per token).
  std::vector<float> router_bias;
  // Stacked FFN experts: gate/up [n_experts * expert_hidden, d],
  // down [n_experts * d, expert_hidden].
  WeightMatrix gate_exps, up_exps, down_exps;
  int64_t n_experts = 0;
  int64_t expert_hidden = 0;

  // MoE++ zero-computation experts.
  int64_t n_zero = 0, n_copy = 0, n_const = 0;
  std::vector<float> const_vectors;  // [n_const, d]
  std::vector<float> const_gates;    // [n_const, 2, d]
  WeightMatrix gating_residual;      // [n_routed(), n_routed()]; data == nullptr: none

  // Always-on shared experts (several are stored concatenated as one wider
  // FFN), with an optional sigmoid gate vector [d] (Qwen-MoE style).
  std::optional<GatedFfn> shared;
  std::vector<float> shared_gate;

  int64_t n_routed() const { return n_experts + n_zero + n_copy + n_const; }
};

class MoeFfn : public FeedForward {
 public:
  // Checks shapes (std::invalid_argument: files are checked before this).
  // meter may be null.
  MoeFfn(MoeWeights w, MoeRouting routing, MoeMeter* meter = nullptr);

  void forward(const Tensor& x, Tensor& y, Scratch& scratch, ThreadPool& pool) const override;
  int64_t d_model() const override { return d_; }
  std::string describe() const override;
  // Router + top_k FFN experts (an upper bound with zero-computation
  // experts; the meter measures the real count) + shared experts.
  uint64_t weight_bytes_per_token() const override;

  const MoeWeights& weights() const { return w_; }
  const MoeRouting& routing() const { return routing_; }
  // Runtime override (`--moe-top-k`); requires 1 <= k <= n_routed().
  void set_top_k(int64_t k);
  // Expert e as a GatedFfn viewing the stacked weights.
  const GatedFfn& expert(int64_t e) const { return experts_[size_t(e)]; }
  uint64_t expert_bytes() const;

 private:
  void compute_logits(const Tensor& x, MoeScratch& s, ThreadPool& pool) const;
  // One token: every selected expert's gate and up (and the shared
  // expert's) in one matmul_many pass, then every down in another.
  void forward_one_token(const Tensor& x, Tensor& y, Scratch& scratch, ThreadPool& pool) const;
  void add_zero_computation(const Tensor& x, int64_t t, int64_t slot_kind_index, float weight, float* y) const;

  MoeWeights w_;
  MoeRouting routing_;
  MoeMeter* meter_;
  int64_t d_ = 0;
  std::vector<GatedFfn> experts_;
};

// A view of row block `index` of `rows_per_block` rows of a stacked matrix.
WeightMatrix row_block(const WeightMatrix& m, int64_t index, int64_t rows_per_block);

}  // namespace ffn
