// Writes small valid inputs for the fuzz targets into <out>/<target>/.
//
// The shipped checkpoints are about 1 MB, nearly all weights: mutations of
// them rarely touch a header and each run is slow. These seeds are tiny
// models (2 layers, dim 8 or 32) in every format and element type, with
// tokenizers that have byte tokens, scores and merges, so that the fuzzer
// reaches model construction and tokenization within a few mutations.
// CMake copies the shipped files beside them.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/half.h"
#include "io/model_source.h"
#include "core/thread_pool.h"
#include "model/llama_model.h"
#include "model/moe_params.h"
#include "transform/synthesize.h"
#include "transform/activation_stats.h"
#include "transform/dense_to_moe.h"
#include "transform/ffn_activations.h"
#include "transform/sparse_file.h"
#include "transform/sparsify.h"
#include "kernels/convert.h"
#include "kernels/quant_blocks.h"

namespace {

using namespace ffn;
namespace fs = std::filesystem;

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "make_seeds: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

template <typename T>
std::string le(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}

struct Shape {
  int64_t dim, hidden, layers, heads, kv_heads, vocab, ctx;
  int64_t kv_dim() const { return dim / heads * kv_heads; }
};

// Tensor names and shapes of a Llama model, in llama2.c's v1 file order.
std::vector<std::pair<std::string, std::vector<uint64_t>>> llama_tensors(const Shape& s, bool with_output) {
  const uint64_t d = s.dim, h = s.hidden, kv = s.kv_dim(), v = s.vocab;
  std::vector<std::pair<std::string, std::vector<uint64_t>>> t;
  auto per_layer = [&](const char* what, std::vector<uint64_t> shape) {
    for (int64_t l = 0; l < s.layers; ++l) t.push_back({fmt::format("blk.{}.{}.weight", l, what), shape});
  };
  per_layer("attn_norm", {d});
  per_layer("ffn_norm", {d});
  t.push_back({"output_norm.weight", {d}});
  t.push_back({"token_embd.weight", {v, d}});
  per_layer("attn_q", {d, d});
  per_layer("attn_k", {kv, d});
  per_layer("attn_v", {kv, d});
  per_layer("attn_output", {d, d});
  per_layer("ffn_gate", {h, d});
  per_layer("ffn_down", {d, h});
  per_layer("ffn_up", {h, d});
  if (with_output) t.push_back({"output.weight", {v, d}});
  return t;
}

// Encodes n floats as `type` (F32, F16, BF16, Q8_0, Q4_0).
std::string encode(DType type, const std::vector<float>& x) {
  std::string out(dtype_row_bytes(type, x.size()), '\0');
  auto* dst = reinterpret_cast<uint8_t*>(out.data());
  if (type == DType::Q8_0 || type == DType::Q4_0) {
    for (size_t b = 0; b < x.size() / kQuantBlock; ++b) {
      float amax = 1e-6f;
      for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::abs(x[b * kQuantBlock + j]));
      if (type == DType::Q8_0) {
        BlockQ8_0 blk;
        const float d = amax / 127;
        blk.d = f32_to_f16(d);
        for (int j = 0; j < kQuantBlock; ++j) blk.qs[j] = static_cast<int8_t>(std::lround(x[b * kQuantBlock + j] / d));
        std::memcpy(dst + b * sizeof blk, &blk, sizeof blk);
      } else {
        BlockQ4_0 blk;
        const float d = amax / 7;
        blk.d = f32_to_f16(d);
        auto q = [&](int j) { return static_cast<uint8_t>(std::clamp<long>(std::lround(x[b * kQuantBlock + j] / d) + 8, 0, 15)); };
        for (int j = 0; j < kQuantBlock / 2; ++j) blk.qs[j] = static_cast<uint8_t>(q(j) | (q(j + 16) << 4));
        std::memcpy(dst + b * sizeof blk, &blk, sizeof blk);
      }
    }
  } else {
    encode_row(type, x.data(), dst, x.size());
  }
  return out;
}

std::vector<float> random_values(uint64_t n, std::mt19937& rng, bool norm) {
  std::uniform_real_distribution<float> dist(-0.5f, 0.5f);
  std::vector<float> v(n);
  for (auto& x : v) x = norm ? 1.0f + dist(rng) * 0.1f : dist(rng);
  return v;
}

// A 16-token SentencePiece-style vocabulary with specials, byte tokens,
// scores and (optionally) Hugging Face merges.
TokenizerData tiny_tokenizer(bool merges) {
  TokenizerData t;
  t.tokens = {"<unk>", "<s>", "</s>", "<0x0A>", "<0x41>", "<0xE2>", "\xe2\x96\x81", "a",
              "n", "d", "\xe2\x96\x81" "a", "an", "\xe2\x96\x81" "an", "\xe2\x96\x81" "and", "O", "nd"};
  t.types.assign(t.tokens.size(), TokenType::Normal);
  t.types[0] = TokenType::Unknown;
  t.types[1] = t.types[2] = TokenType::Control;
  t.types[3] = t.types[4] = t.types[5] = TokenType::Byte;
  for (size_t i = 0; i < t.tokens.size(); ++i) t.scores.push_back(-static_cast<float>(i));
  if (merges) t.merges = {"\xe2\x96\x81 a", "a n", "n d", "\xe2\x96\x81" "a n", "\xe2\x96\x81" "an d"};
  return t;
}

struct Model {
  ModelSource src;
  std::vector<std::string> buffers;  // tensor bytes (ModelSource holds views)
};

// A Llama ModelSource with random weights; `type_of(name)` picks each
// matrix's element type (norms stay F32).
template <typename TypeOf>
Model tiny_model(const Shape& s, bool with_output, uint32_t seed, TypeOf type_of) {
  Model m;
  m.src.path = "seed";
  m.src.format = "gguf";
  auto& p = m.src.params;
  p.dim = s.dim;
  p.hidden_dim = s.hidden;
  p.n_layers = s.layers;
  p.n_heads = s.heads;
  p.n_kv_heads = s.kv_heads;
  p.vocab_size = s.vocab;
  p.context_length = s.ctx;
  p.rope_dim = s.dim / s.heads;
  std::mt19937 rng(seed);
  const auto specs = llama_tensors(s, with_output);
  m.buffers.reserve(specs.size());
  for (const auto& [name, shape] : specs) {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    WeightTensor t;
    t.name = name;
    t.type = shape.size() == 1 ? DType::F32 : type_of(name);
    t.shape = shape;
    m.buffers.push_back(encode(t.type, random_values(n, rng, shape.size() == 1)));
    t.data = reinterpret_cast<const uint8_t*>(m.buffers.back().data());
    t.bytes = m.buffers.back().size();
    m.src.add(std::move(t));
  }
  return m;
}

std::string floats(const Model& m, const std::string& name) {
  const WeightTensor& t = m.src.get(name);
  return std::string(reinterpret_cast<const char*>(t.data), t.bytes);
}

// llama2.c checkpoint of an all-F32 model: legacy (7 int32, negative vocab
// for an unshared classifier, freq_cis tables) or v1 ("ak42", 256-byte header).
std::string llama2c(const Model& m, const Shape& s, bool v1, bool shared) {
  std::string out;
  const int32_t vocab = static_cast<int32_t>(s.vocab);
  const int32_t header[7] = {int32_t(s.dim), int32_t(s.hidden), int32_t(s.layers), int32_t(s.heads),
                             int32_t(s.kv_heads), v1 || shared ? vocab : -vocab, int32_t(s.ctx)};
  if (v1) out += le<uint32_t>(0x616b3432) + le<int32_t>(1);
  for (int32_t h : header) out += le<int32_t>(h);
  if (v1) {
    out += le<uint8_t>(shared ? 1 : 0);
    out.resize(256, '\0');
  }
  auto layers = [&](const char* what) {
    for (int64_t l = 0; l < s.layers; ++l) out += floats(m, fmt::format("blk.{}.{}.weight", l, what));
  };
  if (v1) {
    layers("attn_norm");
    layers("ffn_norm");
    out += floats(m, "output_norm.weight");
    out += floats(m, "token_embd.weight");
  } else {
    out += floats(m, "token_embd.weight");
    layers("attn_norm");
  }
  layers("attn_q");
  layers("attn_k");
  layers("attn_v");
  layers("attn_output");
  if (!v1) layers("ffn_norm");
  layers("ffn_gate");
  layers("ffn_down");
  layers("ffn_up");
  if (!v1) {
    out += floats(m, "output_norm.weight");
    out += std::string(static_cast<size_t>(s.ctx * (s.dim / s.heads) * 4), '\0');  // freq_cis
  }
  if (!shared) out += floats(m, "output.weight");
  return out;
}

// safetensors with Hugging Face names (q/k are not permuted: the fuzz target
// only parses the container).
std::string safetensors(const Model& m) {
  const std::vector<std::pair<std::string, std::string>> names = {
      {"token_embd.weight", "model.embed_tokens.weight"}, {"output_norm.weight", "model.norm.weight"},
      {"output.weight", "lm_head.weight"}};
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}", data;
  for (const auto& t : m.src.tensors) {
    std::string hf = t.name;
    for (const auto& [g, h] : names)
      if (g == t.name) hf = h;
    if (hf.rfind("blk.", 0) == 0) {
      const size_t dot = hf.find('.', 4);
      const std::string layer = hf.substr(4, dot - 4), what = hf.substr(dot + 1);
      static const std::vector<std::pair<std::string, std::string>> parts = {
          {"attn_norm.weight", "input_layernorm.weight"}, {"ffn_norm.weight", "post_attention_layernorm.weight"},
          {"attn_q.weight", "self_attn.q_proj.weight"},   {"attn_k.weight", "self_attn.k_proj.weight"},
          {"attn_v.weight", "self_attn.v_proj.weight"},   {"attn_output.weight", "self_attn.o_proj.weight"},
          {"ffn_gate.weight", "mlp.gate_proj.weight"},    {"ffn_up.weight", "mlp.up_proj.weight"},
          {"ffn_down.weight", "mlp.down_proj.weight"}};
      for (const auto& [g, h] : parts)
        if (g == what) hf = "model.layers." + layer + "." + h;
    }
    std::string shape;
    for (uint64_t d : t.shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    header += fmt::format(",\"{}\":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}", hf,
                          dtype_name(t.type), shape, data.size(), data.size() + t.bytes);
    data.append(reinterpret_cast<const char*>(t.data), t.bytes);
  }
  header += "}";
  header.resize((header.size() + 7) / 8 * 8, ' ');
  return le<uint64_t>(header.size()) + header + data;
}

// llama2.c tokenizer.bin with 512 tokens (the vocabulary the fuzz target
// asks for): specials, 256 byte tokens, then pieces with spaces, an empty
// piece and long ones.
std::string tokenizer_bin_512() {
  std::vector<std::string> pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int b = 0; b < 256; ++b) pieces.push_back(fmt::format("<0x{:02X}>", b));
  const std::string letters = "abcdefghijklmnopqrstuvwxyz";
  for (size_t i = 0; pieces.size() < 512; ++i) {
    std::string p = (i % 3 == 0 ? " " : "") + letters.substr(i % 26, 1 + i % 4);
    if (i == 7) p = "";
    if (i == 11) p = " Once upon";
    pieces.push_back(p);
  }
  std::string out = le<int32_t>(16);
  for (size_t i = 0; i < pieces.size(); ++i)
    out += le<float>(-static_cast<float>(i)) + le<int32_t>(static_cast<int32_t>(pieces[i].size())) + pieces[i];
  return out;
}

const char* const kTokenizerJson = R"({
  "version": "1.0",
  "added_tokens": [
    {"id": 0, "content": "<unk>", "special": true},
    {"id": 1, "content": "<s>", "special": true},
    {"id": 2, "content": "</s>", "special": true}
  ],
  "normalizer": {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "\u2581"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
  "pre_tokenizer": null,
  "model": {
    "type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true,
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "<0x41>": 4, "<0xE2>": 5, "\u2581": 6,
              "a": 7, "n": 8, "d": 9, "\u2581a": 10, "an": 11, "\u2581an": 12, "\u2581and": 13, "O": 14, "nd": 15},
    "merges": ["\u2581 a", ["a", "n"], "n d", "\u2581a n", "\u2581an d"]
  }
}
)";

}  // namespace

// The MoE model with MoE++ experts added to every layer: one zero, one copy
// and one constant expert (router rows appended), and gating residuals from
// layer 1 on.
ModelSource with_moepp(const ModelSource& moe, int64_t n_layers, int64_t dim) {
  ModelSource out = moe.without_tensors();
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 0.5f);
  auto floats = [&](std::string name, std::vector<uint64_t> shape) {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    auto buf = std::make_shared<std::vector<uint8_t>>(n * 4);
    for (uint64_t i = 0; i < n; ++i) {
      const float v = nd(rng);
      std::memcpy(buf->data() + 4 * i, &v, 4);
    }
    out.add(WeightTensor{std::move(name), DType::F32, std::move(shape), buf->data(), buf->size()});
    out.owners.push_back(buf);
  };
  int64_t experts = 0, hidden = 0;
  for (const auto& t : moe.tensors) {
    if (t.name.find("ffn_gate_exps") != std::string::npos) experts = int64_t(t.shape[0]), hidden = int64_t(t.shape[1]);
    if (t.name.find("ffn_gate_inp.") == std::string::npos) out.add(t);
  }
  const uint64_t routed = uint64_t(experts + 3), d = uint64_t(dim);
  for (int64_t l = 0; l < n_layers; ++l) {
    floats(fmt::format("blk.{}.ffn_gate_inp.weight", l), {routed, d});
    floats(fmt::format("blk.{}.ffn_const_exps.weight", l), {1, d});
    floats(fmt::format("blk.{}.ffn_const_gate.weight", l), {1, 2, d});
    if (l > 0) floats(fmt::format("blk.{}.ffn_gate_res.weight", l), {routed, routed});
  }
  MoeParams p;
  p.n_experts = experts;
  p.expert_hidden = hidden;
  p.n_zero = p.n_copy = p.n_const = 1;
  p.routing.top_k = 2;
  p.routing.renormalize = true;
  write_moe_params(out, p);
  return out;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds OUT_DIR\n");
    return 2;
  }
  const fs::path out = argv[1];
  for (const char* t : {"gguf", "llama2c", "llama2c_tokenizer", "safetensors", "tokenizer_json", "activation_stats"})
    fs::create_directories(out / t);
  try {
    const Shape small{8, 12, 2, 2, 1, 16, 16};
    const Shape wide{32, 64, 2, 4, 2, 16, 16};  // quantized rows need multiples of 32

    Model f32 = tiny_model(small, false, 1, [](const std::string&) { return DType::F32; });
    f32.src.tokenizer = tiny_tokenizer(false);
    write_gguf(f32.src, (out / "gguf/tiny_f32.gguf").string());
    {
      // The same model with activation sparsity written in (TEAL: every
      // matrix transposed; CHESS: channel thresholds, q and o transposed),
      // and activation statistics of it.
      LlamaModel model(f32.src);
      std::vector<int32_t> tokens;
      for (int32_t i = 0; i < 64; ++i) tokens.push_back(i % 16);
      ThreadPool pool(1);
      ActivationStats st = collect_activation_stats(model, tokens, 1, 16, 64, 64, pool);
      save_activation_stats(st, (out / "activation_stats/tiny_stats.json").string());
      save_activation_stats(st, (out / "activation_stats/tiny_stats.gguf").string());
      for (const char* spec : {"teal:0.5", "chess:0.4", "stat-topk:0.3"}) {
        const SparsityPlan plan = plan_sparsity(parse_sparsity_spec(spec), &st, model);
        const std::string name = std::string("gguf/tiny_sparse_") + std::string(spec).substr(0, 4) + ".gguf";
        write_gguf(with_sparsity_plan(f32.src, plan, nullptr), (out / name).string());
      }
      // Mixture of experts: the model split into experts (routers, stacked
      // experts, a shared expert), and with MoE++ experts and gating
      // residuals added.
      const FfnActivations acts = record_ffn_activations(model, tokens, 1, 16, 64, pool);
      const ModelSource moe = dense_to_moe(f32.src, model, acts, parse_moe_conversion("moe:3/2/coact/s1"), pool);
      write_gguf(moe, (out / "gguf/tiny_moe.gguf").string());
      write_gguf(with_moepp(moe, int64_t(small.layers), int64_t(small.dim)), (out / "gguf/tiny_moepp.gguf").string());
    }
    {
      // qwen2moe: q/k/v biases, NeoX RoPE, a gated shared expert.
      SynthShape qwen = *synth_preset("qwen-moe-tiny");
      qwen.dim = 32;
      qwen.n_heads = 2;
      qwen.n_kv_heads = 1;
      qwen.hidden_dim = 16;
      qwen.shared_hidden = 24;
      qwen.n_layers = 1;
      qwen.vocab_size = 260;
      write_gguf(synthesize(qwen, DType::F32, 3), (out / "gguf/tiny_qwen2moe.gguf").string());
    }

    Model mixed = tiny_model(wide, true, 2, [](const std::string& name) {
      if (name.find("attn_q") != std::string::npos || name.find("ffn_up") != std::string::npos) return DType::Q8_0;
      if (name.find("ffn_down") != std::string::npos || name.find("attn_v") != std::string::npos) return DType::Q4_0;
      if (name.find("token_embd") != std::string::npos) return DType::F16;
      if (name.find("output") != std::string::npos) return DType::BF16;
      return DType::F32;
    });
    mixed.src.tokenizer = tiny_tokenizer(true);
    mixed.src.tokenizer->add_space_prefix = false;
    mixed.src.tokenizer->fuse_unk = true;
    write_gguf(mixed.src, (out / "gguf/tiny_mixed.gguf").string());

    Model unshared = tiny_model(small, true, 3, [](const std::string&) { return DType::F32; });
    write_file(out / "llama2c/tiny_legacy.bin", llama2c(f32, small, false, true));
    write_file(out / "llama2c/tiny_legacy_unshared.bin", llama2c(unshared, small, false, false));
    write_file(out / "llama2c/tiny_v1.bin", llama2c(f32, small, true, true));
    write_file(out / "llama2c/tiny_v1_unshared.bin", llama2c(unshared, small, true, false));

    write_file(out / "safetensors/tiny_f32.safetensors", safetensors(unshared));
    Model halves = tiny_model(small, true, 4, [](const std::string& name) {
      return name.find("attn") != std::string::npos ? DType::F16 : DType::BF16;
    });
    write_file(out / "safetensors/tiny_half.safetensors", safetensors(halves));

    write_file(out / "llama2c_tokenizer/tok512_synthetic.bin", tokenizer_bin_512());
    write_file(out / "tokenizer_json/tiny_tokenizer.json", kTokenizerJson);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
