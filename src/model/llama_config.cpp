#include "model/llama_config.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "io/architectures.h"

namespace ffn {

namespace {

int64_t in_range(const std::string& path, const char* field, uint64_t v, uint64_t lo, uint64_t hi) {
  if (v < lo || v > hi) fail(path, field, fmt::format("{}..{}", lo, hi), std::to_string(v));
  return static_cast<int64_t>(v);
}

}  // namespace

LlamaConfig LlamaConfig::from(const ModelSource& src) {
  const auto& p = src.params;
  const std::string& f = src.path;
  LlamaConfig c;
  c.dim = in_range(f, "embedding_length (dim)", p.dim, 1, 1 << 17);
  c.hidden_dim = in_range(f, "feed_forward_length (hidden_dim)", p.hidden_dim, 1, 1 << 20);
  c.n_layers = in_range(f, "block_count (n_layers)", p.n_layers, 1, 1024);
  c.n_heads = in_range(f, "attention.head_count (n_heads)", p.n_heads, 1, p.dim);
  c.n_kv_heads = in_range(f, "attention.head_count_kv (n_kv_heads)", p.n_kv_heads, 1, p.n_heads);
  c.vocab_size = in_range(f, "vocab_size", p.vocab_size, 1, 1 << 22);
  c.context_length = in_range(f, "context_length", p.context_length, 1, 1 << 24);
  if (c.dim % c.n_heads != 0)
    fail(f, "attention.head_count", fmt::format("a divisor of dim {}", c.dim), std::to_string(c.n_heads));
  if (c.n_heads % c.n_kv_heads != 0)
    fail(f, "attention.head_count_kv", fmt::format("a divisor of head_count {}", c.n_heads),
         std::to_string(c.n_kv_heads));
  c.head_dim = c.dim / c.n_heads;
  c.kv_dim = c.head_dim * c.n_kv_heads;
  c.rope_dim = in_range(f, "rope.dimension_count", p.rope_dim, 2, c.head_dim);
  if (c.rope_dim % 2) fail(f, "rope.dimension_count", "an even number", std::to_string(c.rope_dim));
  // Stored as float: a double beyond float's range would make the cast UB.
  if (!(p.rope_base > 1.0 && p.rope_base <= std::numeric_limits<float>::max()))
    fail(f, "rope.freq_base", "a finite number > 1 (a float)", fmt::format("{}", p.rope_base));
  if (!(p.rms_eps > 0.0 && p.rms_eps < 1.0))
    fail(f, "attention.layer_norm_rms_epsilon", "a number in (0, 1)", fmt::format("{}", p.rms_eps));
  // A tensor of a layer at or past block_count would be ignored: the file is
  // inconsistent, not a smaller model.
  for (const auto& t : src.tensors) {
    if (t.name.rfind("blk.", 0) != 0) continue;
    uint64_t layer = 0;
    size_t i = 4;
    for (; i < t.name.size() && i < 12 && t.name[i] >= '0' && t.name[i] <= '9'; ++i)
      layer = layer * 10 + static_cast<uint64_t>(t.name[i] - '0');
    if (i > 4 && layer >= p.n_layers)
      fail(f, "block_count (n_layers)",
           fmt::format("at least {} (the file has tensor '{}')", layer + 1, t.name), std::to_string(p.n_layers));
  }
  c.rope_style = uses_neox_rope(src.arch) ? RopeStyle::NeoX : RopeStyle::Interleaved;
  c.rope_base = static_cast<float>(p.rope_base);
  c.rms_eps = static_cast<float>(p.rms_eps);
  return c;
}

}  // namespace ffn
