// Gated FFN with TEAL's magnitude sparsification of the inputs of its linear
// layers — Liu et al., "Training-Free Activation Sparsity in Large Language
// Models" (TEAL, 2024): the FFN input x (shared by gate and up) keeps
// entries with |x_j| > t_in, and the intermediate h = SiLU(gate)·up keeps
// |h_i| > t_mid before the down projection. A dropped input skips one whole
// column of each weight it feeds, so those matrices are held transposed
// (W^T rows are the columns) and multiplied by matmul_sparse_input.
//
// A threshold of 0 keeps that product dense with the original row-major
// weight, so a model-wide target of 0 runs exactly the dense computation.
#pragma once

#include "core/tensor.h"
#include "ffn/feed_forward.h"
#include "ffn/sparse_activations.h"
#include "ffn/sparsity_meter.h"
#include "kernels/weight_matrix.h"

namespace ffn {

struct TealThresholds {
  float ffn_in = 0;   // on |x|, the input of gate and up
  float ffn_mid = 0;  // on |h|, the input of down
};

class TealFfn : public FeedForward {
 public:
  // The row-major weights (gate, up: [hidden, d_model]; down: [d_model,
  // hidden]) and, where a threshold is positive, W^T for the sparse
  // products: gate_up_t, gate's and up's side by side ([d_model, 2 hidden],
  // concat_columns: an active input reads one row holding both) when
  // t.ffn_in > 0; down_t ([hidden, d_model]) when t.ffn_mid > 0. A
  // row-major matrix may be shape-only (no data: a file that stores only
  // W^T); batches then run sparse too (ffn/sparse_batch.h).
  struct Weights {
    WeightMatrix gate, up, down;
    WeightMatrix gate_up_t, down_t;
  };
  // in_site / mid_site may be null.
  TealFfn(Weights w, TealThresholds t, SparsitySite* in_site, SparsitySite* mid_site);

  void forward(const Tensor& x, Tensor& y, Scratch& scratch, ThreadPool& pool) const override;
  int64_t d_model() const override { return d_model_; }
  int64_t hidden() const { return hidden_; }
  std::string describe() const override;
  uint64_t weight_bytes_per_token() const override;
  const TealThresholds& thresholds() const { return t_; }

 private:
  int64_t d_model_, hidden_;
  TealThresholds t_;
  Weights w_;
  SparsitySite* in_site_;
  SparsitySite* mid_site_;
  mutable SparseActivations packed_;
  mutable Tensor gate_up_;  // [n, 2 hidden]: the fused gate/up product
};

}  // namespace ffn
