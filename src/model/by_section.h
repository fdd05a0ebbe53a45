// A quantity for each part of the forward pass that ForwardProfile times
// (model/llama_model.h): weight bytes read per token, seconds, GB/s.
#pragma once

namespace ffn {

struct BySection {
  double attention = 0;  // q/k/v/o projections (in time: also attention over the cache)
  double ffn = 0;        // the FFN (MoE: the routed experts that run)
  double other = 0;      // output head, embedding row, final norm
  double total() const { return attention + ffn + other; }
};

}  // namespace ffn
