// MoeMeter: where the routed slots of a mixture-of-experts model went, so the
// compute actually spent is measured on the text run (MoE++ zero-computation
// experts make it vary per token), never assumed from top_k.
#pragma once

#include <cstdint>

namespace ffn {

struct MoeMeter {
  uint64_t tokens = 0;       // token x MoE-layer visits
  uint64_t ffn_slots = 0;    // routed slots that ran an FFN expert
  uint64_t zero_slots = 0;   // MoE++ zero expert (nothing computed)
  uint64_t copy_slots = 0;   // MoE++ copy expert (x passed through)
  uint64_t const_slots = 0;  // MoE++ constant expert
  double ffn_expert_bytes = 0;  // weight bytes of one FFN expert, all layers alike

  void reset() { tokens = ffn_slots = zero_slots = copy_slots = const_slots = 0; }
  uint64_t slots() const { return ffn_slots + zero_slots + copy_slots + const_slots; }
  // FFN experts run per token and layer (top_k when there are no
  // zero-computation experts).
  double ffn_experts_per_token() const { return tokens ? double(ffn_slots) / double(tokens) : 0.0; }
};

}  // namespace ffn
