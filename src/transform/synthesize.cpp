#include "transform/synthesize.h"

#include <fmt/format.h>

#include <cmath>
#include <memory>
#include <set>

#include "core/error.h"
#include "core/thread_pool.h"
#include "io/architectures.h"
#include "kernels/convert.h"
#include "model/moe_params.h"

namespace ffn {

namespace {

const SynthShape kPresets[] = {
    // TinyLlama-1.1B: the shape the llama.cpp figures use.
    {"tinyllama-1.1b", 2048, 5632, 22, 32, 4, 32000, 2048},
    {"llama-300m", 1024, 2816, 24, 16, 4, 32000, 2048},
    {"llama-100m", 768, 2048, 12, 12, 4, 32000, 2048},
    {"tiny", 64, 160, 2, 4, 2, 32000, 256},
    // OLMoE-1B-7B (Muennighoff et al., 2024): 64 experts of 1024, top-8.
    {"olmoe-1b-7b", 2048, 1024, 16, 16, 16, 50304, 4096, 64, 8},
    // Qwen1.5-MoE-A2.7B: 60 experts of 1408, top-4, a shared expert of 5632
    // behind a sigmoid gate, q/k/v biases, NeoX RoPE.
    {"qwen-moe-a2.7b", 2048, 1408, 24, 16, 16, 151936, 8192, 60, 4, "qwen2moe", 5632},
    {"mixtral-tiny", 64, 96, 2, 4, 2, 32000, 256, 4, 2},
    {"qwen-moe-tiny", 64, 32, 2, 4, 2, 32000, 256, 4, 2, "qwen2moe", 96},
};

// splitmix64: a fast, well-mixed counter-based generator, so that every
// row has its own stream (thread-count independent) at no setup cost.
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Standard normal samples by Box-Muller from a splitmix64 stream.
void fill_normal(float* out, uint64_t n, uint64_t stream, float stddev) {
  uint64_t state = splitmix64(stream);
  for (uint64_t i = 0; i < n; i += 2) {
    state = splitmix64(state);
    const double u1 = (double((state >> 11) + 1)) * (1.0 / 9007199254740993.0);  // (0, 1]
    state = splitmix64(state);
    const double u2 = double(state >> 11) * (1.0 / 9007199254740992.0);
    const double r = std::sqrt(-2.0 * std::log(u1)) * stddev;
    out[i] = static_cast<float>(r * std::cos(6.283185307179586 * u2));
    if (i + 1 < n) out[i + 1] = static_cast<float>(r * std::sin(6.283185307179586 * u2));
  }
}

TokenizerData synth_vocab(uint64_t n) {
  TokenizerData tok;
  tok.model = "llama";
  auto add = [&](std::string piece, TokenType type) {
    tok.tokens.push_back(std::move(piece));
    tok.types.push_back(type);
    tok.scores.push_back(-static_cast<float>(tok.tokens.size()));
  };
  add("<unk>", TokenType::Unknown);
  add("<s>", TokenType::Control);
  add("</s>", TokenType::Control);
  for (int b = 0; b < 256 && tok.tokens.size() < n; ++b) add(fmt::format("<0x{:02X}>", b), TokenType::Byte);
  add("\xe2\x96\x81", TokenType::Normal);  // "▁" alone, so every space has a piece
  // Then printable pieces of growing length, with and without "▁", until n.
  const std::string alphabet = "etaoinshrdlucmfwypvbgkjqxzETAOINSHRDLUCMFWYPVBGKJQXZ0123456789.,!?'";
  std::set<std::string> seen(tok.tokens.begin(), tok.tokens.end());  // (vocab >= 260)
  std::vector<std::string> frontier = {""};
  while (tok.tokens.size() < n) {
    std::vector<std::string> next;
    for (const auto& prefix : frontier)
      for (char c : alphabet) {
        std::string p = prefix + c;
        next.push_back(p);
        for (const std::string& piece : {p, "\xe2\x96\x81" + p})
          if (tok.tokens.size() < n && seen.insert(piece).second) add(piece, TokenType::Normal);
      }
    frontier.swap(next);
  }
  tok.bos_id = 1;
  tok.eos_id = 2;
  tok.unk_id = 0;
  return tok;
}

}  // namespace

std::optional<SynthShape> synth_preset(const std::string& name) {
  for (const auto& p : kPresets)
    if (p.name == name) return p;
  return std::nullopt;
}

std::vector<std::string> synth_preset_names() {
  std::vector<std::string> names;
  for (const auto& p : kPresets) names.push_back(p.name);
  return names;
}

ModelSource synthesize(const SynthShape& s, DType type, uint64_t seed) {
  const std::string where = "synth " + s.name;
  if (s.dim == 0 || s.n_heads == 0 || s.dim % s.n_heads || s.n_kv_heads == 0 || s.n_heads % s.n_kv_heads ||
      (s.dim / s.n_heads) % 2 || s.hidden_dim == 0 || s.n_layers == 0 || s.vocab_size < 260 ||
      s.n_experts_used > s.n_experts || (s.n_experts && !s.n_experts_used) || (s.shared_hidden && !s.n_experts))
    fail(where, "shape",
         "dim divisible by heads (even head size), heads divisible by kv-heads, vocab >= 260, "
         "1 <= experts used <= experts, a shared expert only with experts",
         fmt::format("dim {} ffn {} layers {} heads {} kv-heads {} vocab {} experts {}/{} shared {}", s.dim,
                     s.hidden_dim, s.n_layers, s.n_heads, s.n_kv_heads, s.vocab_size, s.n_experts_used, s.n_experts,
                     s.shared_hidden));
  const bool arch_fits = is_supported_architecture(s.arch) && !(s.arch == "qwen2moe" && !s.n_experts) &&
                         !(s.arch == "qwen2" && s.n_experts);
  if (!arch_fits)
    fail(where, "architecture",
         fmt::format("{} (qwen2 without experts, qwen2moe with them, llama either way)", supported_architectures()),
         fmt::format("\"{}\" with {} experts", s.arch, s.n_experts));
  ModelSource src;
  src.path = where;
  src.format = "synthetic";
  src.arch = s.arch;
  const bool qwen = s.arch != "llama";
  auto& p = src.params;
  p.dim = s.dim;
  p.hidden_dim = s.hidden_dim;
  p.n_layers = s.n_layers;
  p.n_heads = s.n_heads;
  p.n_kv_heads = s.n_kv_heads;
  p.vocab_size = s.vocab_size;
  p.context_length = s.context_length;
  p.rope_dim = s.dim / s.n_heads;
  p.rope_base = 10000.0;
  p.rms_eps = 1e-5;
  src.tokenizer = synth_vocab(s.vocab_size);
  src.extra_metadata.emplace_back("general.name", GgufValue::of_string("ffn synth " + s.name));

  uint64_t stream = splitmix64(seed);
  ThreadPool& pool = ThreadPool::global();
  // A [blocks, rows, cols] tensor when blocks > 0 (stacked experts), else
  // [rows, cols].
  auto tensor = [&](const std::string& name, uint64_t blocks, uint64_t block_rows, uint64_t cols, DType want) {
    const uint64_t rows = std::max<uint64_t>(blocks, 1) * block_rows;
    const DType t = dtype_row_ok(want, cols) ? want : DType::F16;
    const uint64_t row_bytes = dtype_row_bytes(t, cols);
    auto buf = std::make_shared<std::vector<uint8_t>>(row_bytes * rows);
    const float stddev = static_cast<float>(1.0 / std::sqrt(double(cols)));
    const uint64_t base = stream;
    stream = splitmix64(stream);
    pool.parallel_for(int64_t(rows), [&](int64_t r0, int64_t r1, int) {
      std::vector<float> row(cols);
      for (int64_t r = r0; r < r1; ++r) {
        fill_normal(row.data(), cols, base ^ (uint64_t(r) * 0x9e3779b97f4a7c15ull), stddev);
        encode_row(t, row.data(), buf->data() + uint64_t(r) * row_bytes, cols);
      }
    });
    std::vector<uint64_t> shape = {block_rows, cols};
    if (blocks) shape.insert(shape.begin(), blocks);
    src.add(WeightTensor{name, t, shape, buf->data(), buf->size()});
    src.owners.push_back(buf);
  };
  auto matrix = [&](const std::string& name, uint64_t rows, uint64_t cols) { tensor(name, 0, rows, cols, type); };
  auto ones = [&](const std::string& name, uint64_t n) {
    auto buf = std::make_shared<std::vector<float>>(n, 1.0f);
    src.add(WeightTensor{name, DType::F32, {n}, reinterpret_cast<const uint8_t*>(buf->data()), n * 4});
    src.owners.push_back(buf);
  };
  auto random_vector = [&](const std::string& name, uint64_t n, float stddev) {
    auto buf = std::make_shared<std::vector<float>>(n);
    fill_normal(buf->data(), n, stream, stddev);
    stream = splitmix64(stream);
    src.add(WeightTensor{name, DType::F32, {n}, reinterpret_cast<const uint8_t*>(buf->data()), n * 4});
    src.owners.push_back(buf);
  };
  const uint64_t kv_dim = s.dim / s.n_heads * s.n_kv_heads;
  matrix("token_embd.weight", s.vocab_size, s.dim);
  ones("output_norm.weight", s.dim);
  matrix("output.weight", s.vocab_size, s.dim);
  for (uint64_t l = 0; l < s.n_layers; ++l) {
    auto n = [l](const char* what) { return fmt::format("blk.{}.{}.weight", l, what); };
    ones(n("attn_norm"), s.dim);
    matrix(n("attn_q"), s.dim, s.dim);
    matrix(n("attn_k"), kv_dim, s.dim);
    matrix(n("attn_v"), kv_dim, s.dim);
    matrix(n("attn_output"), s.dim, s.dim);
    if (qwen) {
      random_vector(fmt::format("blk.{}.attn_q.bias", l), s.dim, 0.1f);
      random_vector(fmt::format("blk.{}.attn_k.bias", l), kv_dim, 0.1f);
      random_vector(fmt::format("blk.{}.attn_v.bias", l), kv_dim, 0.1f);
    }
    ones(n("ffn_norm"), s.dim);
    if (s.n_experts) {
      tensor(n("ffn_gate_inp"), 0, s.n_experts, s.dim, DType::F32);
      tensor(n("ffn_gate_exps"), s.n_experts, s.hidden_dim, s.dim, type);
      tensor(n("ffn_up_exps"), s.n_experts, s.hidden_dim, s.dim, type);
      tensor(n("ffn_down_exps"), s.n_experts, s.dim, s.hidden_dim, type);
      if (s.shared_hidden) {
        random_vector(n("ffn_gate_inp_shexp"), s.dim, static_cast<float>(1.0 / std::sqrt(double(s.dim))));
        matrix(n("ffn_gate_shexp"), s.shared_hidden, s.dim);
        matrix(n("ffn_up_shexp"), s.shared_hidden, s.dim);
        matrix(n("ffn_down_shexp"), s.dim, s.shared_hidden);
      }
      continue;
    }
    matrix(n("ffn_gate"), s.hidden_dim, s.dim);
    matrix(n("ffn_up"), s.hidden_dim, s.dim);
    matrix(n("ffn_down"), s.dim, s.hidden_dim);
  }
  if (s.n_experts) {
    MoeParams moe;
    moe.n_experts = int64_t(s.n_experts);
    moe.expert_hidden = int64_t(s.hidden_dim);
    moe.routing.top_k = int64_t(s.n_experts_used);
    // What llama.cpp's graphs do: llama renormalises the kept weights,
    // qwen2moe does not.
    moe.routing.renormalize = !qwen;
    write_moe_params(src, moe);
    if (s.shared_hidden)
      src.extra_metadata.emplace_back(s.arch + ".expert_shared_feed_forward_length",
                                      GgufValue::of_u32(uint32_t(s.shared_hidden)));
  }
  return src;
}

}  // namespace ffn
