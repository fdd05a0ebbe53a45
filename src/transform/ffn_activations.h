// Recorded FFN activations of a dense model on calibration text: each
// layer's FFN input x (after the norm) and intermediate h = act(gate) * up,
// for the first max_tokens tokens. What the dense -> MoE conversion splits
// neurons by (co-activation, importance) and fits routers on.
#pragma once

#include <cstdint>
#include <vector>

#include "ffn/activation_observer.h"

namespace ffn {

class LlamaModel;
class ThreadPool;

struct FfnActivations {
  int64_t tokens = 0;
  int64_t d_model = 0, hidden = 0;
  std::vector<std::vector<float>> x;  // per layer: [tokens, d_model]
  std::vector<std::vector<float>> h;  // per layer: [tokens, hidden]
};

// Runs `tokens` through the model in windows of ctx (each starting with
// bos) and records up to max_tokens tokens. The model's FFNs must be dense
// (they report FfnMid). Throws ffn::Error when the text has no tokens.
FfnActivations record_ffn_activations(LlamaModel& model, const std::vector<int32_t>& tokens, int32_t bos, int64_t ctx,
                                      int64_t max_tokens, ThreadPool& pool);

}  // namespace ffn
