// Random-weight models of real shapes, for speed work where no real large
// checkpoint can be downloaded. Weights are N(0, 1/fan_in), norms are 1, and
// the vocabulary is a valid 32000-token SentencePiece-style one (<unk>, <s>,
// </s>, 256 byte tokens, then distinct "▁"-pieces), so that llama.cpp loads
// the same file for side-by-side measurements.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/model_source.h"

namespace ffn {

struct SynthShape {
  std::string name;
  uint64_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, context_length;
  // Mixture of experts (0: dense): every layer's FFN becomes n_experts
  // experts of hidden_dim each (llama.cpp's Mixtral-style llama layout: a
  // router ffn_gate_inp and stacked ffn_*_exps), top n_experts_used.
  uint64_t n_experts = 0, n_experts_used = 0;
};

// Known presets: tinyllama-1.1b, llama-300m, llama-100m, tiny (for tests);
// MoE: olmoe-1b-7b (64 experts, top-8), mixtral-tiny (for tests).
std::optional<SynthShape> synth_preset(const std::string& name);
std::vector<std::string> synth_preset_names();

// Builds the model; weight matrices are encoded as `type` (Q8_0/Q4_0 rows
// that are not a multiple of 32 fall back to F16). Deterministic in `seed`,
// independent of the thread count.
ModelSource synthesize(const SynthShape& shape, DType type, uint64_t seed);

}  // namespace ffn
