// Validated Llama-family hyper-parameters, derived from a ModelSource.
#pragma once

#include <cstdint>

#include "io/model_source.h"
#include "kernels/ops.h"

namespace ffn {

struct LlamaConfig {
  int64_t dim = 0;
  int64_t hidden_dim = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t kv_dim = 0;
  int64_t vocab_size = 0;
  int64_t context_length = 0;
  int64_t rope_dim = 0;
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  // llama files (GGUF, llama2.c, and safetensors, permuted at load) hold
  // q/k in the interleaved layout; qwen2 GGUF files keep Hugging Face's
  // rotate-half layout (io/architectures.h).
  RopeStyle rope_style = RopeStyle::Interleaved;

  // Checks ranges and consistency; errors name src.path and the field.
  static LlamaConfig from(const ModelSource& src);
};

}  // namespace ffn
