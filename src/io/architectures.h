// The GGUF architectures ffn.cpp runs, and how they differ. All are the
// Llama block (RMSNorm, grouped-query attention with RoPE, gated FFN or
// mixture of experts); the differences are data, not code paths:
//   llama     Mixtral-style MoE when the file has experts; q/k rows stored
//             in the interleaved RoPE layout (llama.cpp permutes them).
//   qwen2     Qwen2: biases on q/k/v, q/k rows in Hugging Face's layout, so
//             RoPE rotates halves (NeoX style).
//   qwen2moe  Qwen1.5-MoE / Qwen2-MoE: qwen2 plus softmax-then-top-k routing
//             without renormalisation and a sigmoid-gated shared expert.
#pragma once

#include <string>

namespace ffn {

bool is_supported_architecture(const std::string& arch);
// "\"llama\", \"qwen2\" or \"qwen2moe\"", for error messages.
std::string supported_architectures();
// True when the file stores q/k rows in Hugging Face's rotate-half layout.
bool uses_neox_rope(const std::string& arch);

}  // namespace ffn
