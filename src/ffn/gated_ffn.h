// Gated FFN (GLU family): y = W_down · (act(W_gate · x) ⊙ (W_up · x)).
// With act = SiLU this is SwiGLU, the FFN of Llama-family models.
// (Shazeer, "GLU Variants Improve Transformer", 2020.)
#pragma once

#include "ffn/feed_forward.h"
#include "kernels/weight_matrix.h"

namespace ffn {

class GatedFfn : public FeedForward {
 public:
  // gate, up: [hidden, d_model]; down: [d_model, hidden]. Shapes are checked
  // (std::invalid_argument: a programming error, files are checked earlier).
  GatedFfn(WeightMatrix gate, WeightMatrix up, WeightMatrix down);

  void forward(const Tensor& x, Tensor& y, Scratch& scratch, ThreadPool& pool) const override;
  int64_t d_model() const override { return down_.rows; }
  int64_t hidden() const { return gate_.rows; }
  std::string describe() const override;
  uint64_t weight_bytes_per_token() const override;

  const WeightMatrix& gate() const { return gate_; }
  const WeightMatrix& up() const { return up_; }
  const WeightMatrix& down() const { return down_; }

 private:
  WeightMatrix gate_, up_, down_;
};

}  // namespace ffn
