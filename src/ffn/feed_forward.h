// FeedForward: the interface every FFN variant implements (dense, gated,
// quantized, mixture-of-experts, sparse, nested, low-rank, adapters). A model
// layer owns one and calls forward(); transforms build new ones and swap
// them in. Adding a variant touches src/ffn/ and its test, nothing else.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ffn/activation_observer.h"
#include "kernels/weight_matrix.h"

namespace ffn {

class ThreadPool;
class GatedFfn;

// Buffers of the mixture-of-experts FFN (ffn/moe_ffn.h). prev_logits carries
// one layer's router logits to the next (MoE++ gating residuals).
struct MoeScratch {
  Tensor logits, prev_logits, residual, x, out;
  std::vector<int32_t> ids, tokens, offsets;
  std::vector<float> weights, token_weights;
  // One token: the experts it runs, their hidden offsets and the products.
  std::vector<const GatedFfn*> picked;
  std::vector<int64_t> picked_offsets;
  std::vector<MatmulJob> jobs;
};

// Reusable per-call buffers, owned by the caller so that variants allocate
// nothing on the decode path after the first call.
struct Scratch {
  Tensor a;
  Tensor b;
  Tensor c;
  ActivationTap tap;  // set by the model for each layer; usually inactive
  MoeScratch moe;
};

class FeedForward {
 public:
  virtual ~FeedForward() = default;

  // x: [n_tokens, d_model] -> y: [n_tokens, d_model] (y is resized).
  virtual void forward(const Tensor& x, Tensor& y, Scratch& scratch, ThreadPool& pool) const = 0;

  virtual int64_t d_model() const = 0;
  // One line, e.g. "gated silu 64->172->64 F32".
  virtual std::string describe() const = 0;
  // Bytes of weights read for one token (for bandwidth accounting).
  virtual uint64_t weight_bytes_per_token() const = 0;
};

}  // namespace ffn
