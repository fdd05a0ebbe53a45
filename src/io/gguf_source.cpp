#include "io/gguf_source.h"

#include <fmt/format.h>

#include <set>

#include "core/error.h"
#include "io/architectures.h"
#include "io/gguf_writer.h"

namespace ffn {

namespace {

// Our own key (GGUF has none): Hugging Face's fuse_unk tokenizer option.
const char* const kFuseUnkKey = "ffn.tokenizer.fuse_unk";

// Keys write_gguf() regenerates from LlamaParams / TokenizerData. Every
// other key of an input file is carried through unchanged.
const std::set<std::string> kRegeneratedKeys = {
    "general.architecture", "general.alignment", "general.file_type", "general.quantization_version",
    "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_space_prefix",
    kFuseUnkKey};
const char* const kRegeneratedArchKeys[] = {
    "context_length", "embedding_length", "feed_forward_length", "block_count", "attention.head_count",
    "attention.head_count_kv", "rope.dimension_count", "rope.freq_base",
    "attention.layer_norm_rms_epsilon", "vocab_size"};

bool is_handled_key(const std::string& key, const std::string& arch) {
  if (kRegeneratedKeys.count(key)) return true;
  for (const char* k : kRegeneratedArchKeys)
    if (key == arch + "." + k) return true;
  return false;
}

}  // namespace

std::optional<TokenizerData> tokenizer_from_gguf(const GgufFile& g) {
  const auto model = g.get_string_opt("tokenizer.ggml.model");
  if (!model) return std::nullopt;
  if (*model != "llama")
    fail(g.path(), "tokenizer.ggml.model",
         "\"llama\" (SentencePiece-style; gpt2 byte-level BPE is not supported yet)",
         "\"" + *model + "\"");
  TokenizerData tok;
  tok.model = "llama";
  const auto* tokens = g.get_array_opt("tokenizer.ggml.tokens", GgufType::STRING);
  if (!tokens) fail(g.path(), "tokenizer.ggml.tokens", "an array of strings", "none");
  const size_t n = tokens->size();
  if (n == 0) fail(g.path(), "tokenizer.ggml.tokens", "at least one token", "0");
  tok.tokens.reserve(n);
  for (const auto& v : *tokens) tok.tokens.push_back(v.s);
  if (const auto* scores = g.get_array_opt("tokenizer.ggml.scores", GgufType::F32)) {
    if (scores->size() != n)
      fail(g.path(), "tokenizer.ggml.scores", fmt::format("{} scores (one per token)", n),
           std::to_string(scores->size()));
    for (const auto& v : *scores) tok.scores.push_back(static_cast<float>(v.f));
  }
  tok.types.assign(n, TokenType::Normal);
  if (const auto* types = g.get_array_opt("tokenizer.ggml.token_type", GgufType::I32)) {
    if (types->size() != n)
      fail(g.path(), "tokenizer.ggml.token_type", fmt::format("{} types (one per token)", n),
           std::to_string(types->size()));
    for (size_t i = 0; i < n; ++i) {
      const int64_t t = (*types)[i].i;
      if (t < 1 || t > 6)
        fail(g.path(), fmt::format("tokenizer.ggml.token_type[{}]", i), "1..6", std::to_string(t));
      tok.types[i] = static_cast<TokenType>(t);
    }
  }
  if (const auto* merges = g.get_array_opt("tokenizer.ggml.merges", GgufType::STRING))
    for (const auto& v : *merges) tok.merges.push_back(v.s);
  auto id = [&](const char* key, int32_t dflt) -> int32_t {
    const auto v = g.get_uint_opt(key);
    if (!v) return dflt;
    if (*v >= n) fail(g.path(), key, fmt::format("a token id < {}", n), std::to_string(*v));
    return static_cast<int32_t>(*v);
  };
  tok.bos_id = id("tokenizer.ggml.bos_token_id", n > 1 ? 1 : 0);
  tok.eos_id = id("tokenizer.ggml.eos_token_id", n > 2 ? 2 : 0);
  tok.unk_id = id("tokenizer.ggml.unknown_token_id", 0);
  tok.add_bos = g.get_bool_opt("tokenizer.ggml.add_bos_token").value_or(true);
  tok.add_space_prefix = g.get_bool_opt("tokenizer.ggml.add_space_prefix").value_or(true);
  tok.fuse_unk = g.get_bool_opt(kFuseUnkKey).value_or(false);
  return tok;
}

ModelSource model_source_from_gguf(std::shared_ptr<const GgufFile> gguf) {
  const GgufFile& g = *gguf;
  ModelSource src;
  src.path = g.path();
  src.format = "gguf";
  src.arch = g.get_string("general.architecture");
  if (!is_supported_architecture(src.arch))
    fail(g.path(), "general.architecture", supported_architectures(), "\"" + src.arch + "\"");
  const std::string a = src.arch + ".";
  auto& p = src.params;
  p.dim = g.get_uint(a + "embedding_length");
  p.hidden_dim = g.get_uint(a + "feed_forward_length");
  p.n_layers = g.get_uint(a + "block_count");
  p.n_heads = g.get_uint(a + "attention.head_count");
  p.n_kv_heads = g.get_uint_opt(a + "attention.head_count_kv").value_or(p.n_heads);
  p.context_length = g.get_uint(a + "context_length");
  p.rms_eps = g.get_float(a + "attention.layer_norm_rms_epsilon");
  p.rope_base = g.get_float_opt(a + "rope.freq_base").value_or(10000.0);
  p.rope_dim = g.get_uint_opt(a + "rope.dimension_count")
                   .value_or(p.n_heads ? p.dim / p.n_heads : 0);
  if (auto v = g.get_uint_opt(a + "vocab_size")) {
    p.vocab_size = *v;
  } else if (const WeightTensor* e = g.find_tensor("token_embd.weight")) {
    p.vocab_size = e->shape[0];
  }
  const auto tokenizer_model = g.get_string_opt("tokenizer.ggml.model");
  if (tokenizer_model && *tokenizer_model != "llama")
    src.tokenizer_unsupported = fmt::format("tokenizer.ggml.model \"{}\" (only \"llama\", SentencePiece-style, is "
                                            "supported; gpt2 byte-level BPE is not yet)", *tokenizer_model);
  else
    src.tokenizer = tokenizer_from_gguf(g);
  for (const auto& t : g.tensors()) src.add(t);
  for (const auto& [key, value] : g.metadata()) {
    const bool kept_tokenizer_key = !src.tokenizer_unsupported.empty() && key.rfind("tokenizer.", 0) == 0;
    if (!is_handled_key(key, src.arch) || kept_tokenizer_key) src.extra_metadata.emplace_back(key, value);
  }
  src.owners.push_back(std::move(gguf));
  return src;
}

void write_gguf(const ModelSource& src, const std::string& out_path) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::of_string(src.arch));
  for (const auto& [key, value] : src.extra_metadata) w.set(key, value);
  const std::string a = src.arch + ".";
  const auto& p = src.params;
  auto u32 = [](uint64_t v) { return GgufValue::of_u32(static_cast<uint32_t>(v)); };
  w.set(a + "context_length", u32(p.context_length));
  w.set(a + "embedding_length", u32(p.dim));
  w.set(a + "feed_forward_length", u32(p.hidden_dim));
  w.set(a + "block_count", u32(p.n_layers));
  w.set(a + "attention.head_count", u32(p.n_heads));
  w.set(a + "attention.head_count_kv", u32(p.n_kv_heads));
  w.set(a + "rope.dimension_count", u32(p.rope_dim));
  w.set(a + "rope.freq_base", GgufValue::of_f32(static_cast<float>(p.rope_base)));
  w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::of_f32(static_cast<float>(p.rms_eps)));
  w.set(a + "vocab_size", u32(p.vocab_size));
  if (src.tokenizer) {
    const TokenizerData& t = *src.tokenizer;
    w.set("tokenizer.ggml.model", GgufValue::of_string(t.model));
    std::vector<GgufValue> tokens, scores, types, merges;
    for (const auto& s : t.tokens) tokens.push_back(GgufValue::of_string(s));
    for (float s : t.scores) scores.push_back(GgufValue::of_f32(s));
    for (auto ty : t.types) types.push_back(GgufValue::of_i32(static_cast<int32_t>(ty)));
    for (const auto& m : t.merges) merges.push_back(GgufValue::of_string(m));
    w.set("tokenizer.ggml.tokens", GgufValue::of_array(GgufType::STRING, std::move(tokens)));
    if (!scores.empty())
      w.set("tokenizer.ggml.scores", GgufValue::of_array(GgufType::F32, std::move(scores)));
    w.set("tokenizer.ggml.token_type", GgufValue::of_array(GgufType::I32, std::move(types)));
    if (!merges.empty())
      w.set("tokenizer.ggml.merges", GgufValue::of_array(GgufType::STRING, std::move(merges)));
    w.set("tokenizer.ggml.bos_token_id", u32(static_cast<uint64_t>(t.bos_id)));
    w.set("tokenizer.ggml.eos_token_id", u32(static_cast<uint64_t>(t.eos_id)));
    w.set("tokenizer.ggml.unknown_token_id", u32(static_cast<uint64_t>(t.unk_id)));
    w.set("tokenizer.ggml.add_bos_token", GgufValue::of_bool(t.add_bos));
    w.set("tokenizer.ggml.add_space_prefix", GgufValue::of_bool(t.add_space_prefix));
    if (t.fuse_unk) w.set(kFuseUnkKey, GgufValue::of_bool(true));
  }
  for (const auto& t : src.tensors) w.add_tensor(t);
  w.write(out_path);
}

}  // namespace ffn
