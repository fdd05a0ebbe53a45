// Next-token sampling: greedy (temperature 0), or temperature with optional
// top-k and top-p (nucleus) filtering, from a seeded generator so that the
// same seed always gives the same text.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace ffn {

struct SamplerParams {
  float temperature = 0.8f;  // 0 = greedy
  int32_t top_k = 40;        // <= 0: no top-k filter
  float top_p = 0.95f;       // >= 1: no top-p filter
  uint64_t seed = 42;
};

class Sampler {
 public:
  explicit Sampler(SamplerParams params);
  int32_t sample(const float* logits, int64_t vocab_size);

 private:
  SamplerParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

}  // namespace ffn
