#include "io/safetensors_source.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <type_traits>
#include <utility>

#include "core/byte_reader.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "io/json_util.h"

namespace ffn {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the format's own limit is 100 MB

std::optional<DType> safetensors_dtype(const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  return std::nullopt;
}

}  // namespace

uint64_t rope_interleaved_source_row(uint64_t row, uint64_t head_dim) {
  const uint64_t h = row / head_dim, r = row % head_dim;
  const uint64_t i = r / 2, j = r % 2;
  return h * head_dim + j * (head_dim / 2) + i;
}

void parse_safetensors(const uint8_t* data, size_t size, const std::string& path,
                       ModelSource& out, std::shared_ptr<const void> owner) {
  ByteReader r(data, size, path);
  const uint64_t header_len = r.read<uint64_t>("header length");
  if (header_len > kMaxHeaderBytes || header_len > r.remaining())
    fail(path, "header length", fmt::format("<= {} bytes", std::min<uint64_t>(kMaxHeaderBytes, r.remaining())),
         std::to_string(header_len));
  const json header = parse_json(std::string(r.bytes(header_len, "header")), path);
  if (!header.is_object()) fail(path, "header", "a JSON object", header.dump().substr(0, 40));
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = size - data_start;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string field = "tensor '" + name + "'";
    if (!info.is_object()) fail(path, field, "a JSON object", info.dump().substr(0, 40));
    const auto dtype_name_s = json_get<std::string>(info, "dtype", path + ": " + field);
    const auto dt = safetensors_dtype(dtype_name_s);
    if (!dt) fail(path, field + " dtype", "F32, F16 or BF16", dtype_name_s);
    const auto shape = json_get<std::vector<uint64_t>>(info, "shape", path + ": " + field);
    const auto offsets = json_get<std::vector<uint64_t>>(info, "data_offsets", path + ": " + field);
    if (shape.empty() || shape.size() > 4)
      fail(path, field + " shape", "1 to 4 dimensions", std::to_string(shape.size()));
    uint64_t elements = 1;
    for (uint64_t d : shape)
      if (d == 0 || !checked_mul(elements, d, &elements) || elements > (1ull << 50))
        fail(path, field + " shape", "positive dimensions with a product below 2^50",
             info.at("shape").dump());
    if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size)
      fail(path, field + " data_offsets", fmt::format("[begin, end] within the {} data bytes", data_size),
           info.at("data_offsets").dump());
    const uint64_t bytes = elements * dtype_block_bytes(*dt);
    if (offsets[1] - offsets[0] != bytes)
      fail(path, field + " data_offsets", fmt::format("{} bytes for shape and dtype", bytes),
           std::to_string(offsets[1] - offsets[0]));
    WeightTensor t;
    t.name = name;
    t.type = *dt;
    t.shape = shape;
    t.data = data + data_start + offsets[0];
    t.bytes = bytes;
    out.add(std::move(t));
  }
  if (owner) out.owners.push_back(std::move(owner));
}

TokenizerData load_tokenizer_json(const std::string& text, const std::string& path) {
  const json j = parse_json(text, path);
  if (!j.is_object() || !j.contains("model")) fail(path, "model", "a tokenizer model object", "none");
  const json& model = j.at("model");
  const auto type = json_get<std::string>(model, "type", path);
  if (type != "BPE") fail(path, "model.type", "\"BPE\"", "\"" + type + "\"");
  // Only the SentencePiece-style BPE (Llama, Mistral, TinyStories) is read:
  // "▁" for spaces, byte fallback. Byte-level (GPT-2) pre-tokenizers are not.
  if (j.contains("pre_tokenizer") && !j.at("pre_tokenizer").is_null()) {
    const std::string pre = j.at("pre_tokenizer").dump();
    if (pre.find("ByteLevel") != std::string::npos || pre.find("Split") != std::string::npos)
      fail(path, "pre_tokenizer", "none or Metaspace (SentencePiece-style BPE)", pre.substr(0, 60));
  }
  TokenizerData tok;
  tok.model = "llama";
  if (!model.contains("vocab") || !model.at("vocab").is_object())
    fail(path, "model.vocab", "an object of token -> id", "none");
  const json& vocab = model.at("vocab");
  size_t n = vocab.size();
  std::vector<std::pair<int64_t, std::string>> added;
  if (j.contains("added_tokens") && j.at("added_tokens").is_array())
    for (const auto& a : j.at("added_tokens"))
      added.emplace_back(json_get<int64_t>(a, "id", path), json_get<std::string>(a, "content", path));
  // Added tokens extend the vocabulary; an id past vocab + added tokens would
  // size it from one number (4M empty tokens from a 60-byte file).
  for (const auto& [id, s] : added) {
    if (id < 0 || static_cast<uint64_t>(id) >= vocab.size() + added.size())
      fail(path, "added_tokens.id", fmt::format("0..{} (ids follow the vocabulary)", vocab.size() + added.size() - 1),
           std::to_string(id));
    if (static_cast<size_t>(id) >= n) n = static_cast<size_t>(id) + 1;
  }
  if (n == 0 || n > (1u << 22)) fail(path, "model.vocab", "1 to 4M tokens", std::to_string(n));
  tok.tokens.assign(n, std::string());
  tok.types.assign(n, TokenType::Unused);
  std::vector<bool> seen(n, false);
  for (const auto& [piece, idv] : vocab.items()) {
    if (!idv.is_number_integer()) fail(path, "model.vocab[\"" + piece + "\"]", "an integer id", idv.dump());
    const int64_t id = idv.get<int64_t>();
    if (id < 0 || static_cast<size_t>(id) >= n || seen[id])
      fail(path, "model.vocab[\"" + piece + "\"]", fmt::format("a unique id < {}", n), std::to_string(id));
    seen[id] = true;
    tok.tokens[id] = piece;
    tok.types[id] = has_byte_token_shape(piece) ? TokenType::Byte : TokenType::Normal;
  }
  for (const auto& [id, s] : added) {
    tok.tokens[id] = s;
    tok.types[id] = TokenType::Control;
  }
  if (model.contains("merges") && model.at("merges").is_array()) {
    for (const auto& m : model.at("merges")) {
      if (m.is_string()) {
        tok.merges.push_back(m.get<std::string>());
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        tok.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      } else {
        fail(path, "model.merges", "\"a b\" strings or [a, b] pairs", m.dump().substr(0, 40));
      }
    }
  }
  const auto unk = json_get_or<std::string>(model, "unk_token", "", path);
  tok.fuse_unk = json_get_or<bool>(model, "fuse_unk", false, path);
  for (size_t i = 0; i < n; ++i)
    if (!unk.empty() && tok.tokens[i] == unk) {
      tok.unk_id = static_cast<int32_t>(i);
      tok.types[i] = TokenType::Unknown;
    }
  // SentencePiece-style scores for GGUF export (llama.cpp's "llama" tokenizer
  // merges by score): the token made by merge rank r scores -r.
  tok.scores.assign(n, 0.0f);
  std::map<std::string, size_t> id_of;
  for (size_t i = 0; i < n; ++i) id_of.emplace(tok.tokens[i], i);
  for (size_t r = 0; r < tok.merges.size(); ++r) {
    const auto& m = tok.merges[r];
    const size_t sp = m.find(' ');
    if (sp == std::string::npos) fail(path, fmt::format("model.merges[{}]", r), "\"left right\"", m);
    auto it = id_of.find(m.substr(0, sp) + m.substr(sp + 1));
    if (it != id_of.end() && tok.scores[it->second] == 0.0f) tok.scores[it->second] = -static_cast<float>(r + 1);
  }
  tok.add_space_prefix = j.contains("normalizer") && j.at("normalizer").dump().find("Prepend") != std::string::npos;
  if (!tok.add_space_prefix && j.contains("pre_tokenizer") && !j.at("pre_tokenizer").is_null()) {
    const std::string pre = j.at("pre_tokenizer").dump();
    tok.add_space_prefix = pre.find("Metaspace") != std::string::npos &&
                           pre.find("\"prepend_scheme\":\"never\"") == std::string::npos;
  }
  return tok;
}

TokenizerData load_tokenizer_json(const std::string& path) {
  return load_tokenizer_json(read_text_file(path), path);
}

ModelSource load_safetensors_model(const std::string& path) {
  std::error_code ec;  // non-throwing checks: errors read as "absent"
  const bool is_dir = fs::is_directory(path, ec);
  fs::path dir = is_dir ? fs::path(path) : fs::path(path).parent_path();
  fs::path st = is_dir ? dir / "model.safetensors" : fs::path(path);
  const std::string config_path = (dir / "config.json").string();
  if (!fs::exists(config_path, ec))
    fail(path, "config.json", "a Hugging Face config.json beside the weights", "none");
  const json config = parse_json(read_text_file(config_path), config_path);

  ModelSource raw;
  raw.path = st.string();
  auto file = std::make_shared<MappedFile>(st.string());
  parse_safetensors(file->data(), file->size(), raw.path, raw, file);

  ModelSource src;
  src.path = path;
  src.format = "safetensors";
  src.owners = raw.owners;
  const auto archs = json_get_or<std::vector<std::string>>(config, "architectures", {}, config_path);
  const auto model_type = json_get_or<std::string>(config, "model_type", "", config_path);
  if (model_type != "llama" &&
      std::find(archs.begin(), archs.end(), "LlamaForCausalLM") == archs.end())
    fail(config_path, "architectures", "[\"LlamaForCausalLM\"] or model_type \"llama\"",
         config.contains("architectures") ? config.at("architectures").dump() : "none");
  const auto act = json_get_or<std::string>(config, "hidden_act", "silu", config_path);
  if (act != "silu") fail(config_path, "hidden_act", "\"silu\"", "\"" + act + "\"");
  auto& p = src.params;
  p.dim = json_get<uint64_t>(config, "hidden_size", config_path);
  p.hidden_dim = json_get<uint64_t>(config, "intermediate_size", config_path);
  p.n_layers = json_get<uint64_t>(config, "num_hidden_layers", config_path);
  p.n_heads = json_get<uint64_t>(config, "num_attention_heads", config_path);
  p.n_kv_heads = json_get_or<uint64_t>(config, "num_key_value_heads", p.n_heads, config_path);
  p.vocab_size = json_get<uint64_t>(config, "vocab_size", config_path);
  p.context_length = json_get_or<uint64_t>(config, "max_position_embeddings", 2048, config_path);
  p.rms_eps = json_get_or<double>(config, "rms_norm_eps", 1e-6, config_path);
  p.rope_base = json_get_or<double>(config, "rope_theta", 10000.0, config_path);
  if (p.dim == 0) fail(config_path, "hidden_size", "> 0", "0");
  // Bound the layer loop below by what the file can hold (a huge count would
  // loop for ever); past that, LlamaConfig checks the range.
  if (p.n_layers > raw.tensors.size())
    fail(config_path, "num_hidden_layers",
         fmt::format("at most {} (the number of tensors in {})", raw.tensors.size(), raw.path),
         std::to_string(p.n_layers));
  if (p.n_heads == 0 || p.dim % p.n_heads != 0)
    fail(config_path, "num_attention_heads", fmt::format("a divisor of hidden_size {}", p.dim),
         std::to_string(p.n_heads));
  const uint64_t head_dim = p.dim / p.n_heads;
  if (head_dim % 2) fail(config_path, "num_attention_heads", "an even head size", std::to_string(head_dim));
  p.rope_dim = head_dim;
  if (config.contains("rope_scaling") && !config.at("rope_scaling").is_null())
    fail(config_path, "rope_scaling", "null (RoPE scaling is not supported yet)",
         config.at("rope_scaling").dump());

  const bool tied = json_get_or<bool>(config, "tie_word_embeddings", false, config_path);
  auto take = [&](const std::string& hf, const std::string& gguf) {
    const WeightTensor* t = raw.find(hf);
    if (!t) return false;
    WeightTensor c = *t;
    c.name = gguf;
    src.add(std::move(c));
    return true;
  };
  if (!take("model.embed_tokens.weight", "token_embd.weight")) {
    // Tied checkpoints may store only lm_head (the __metadata__ aliases it).
    if (!(tied && take("lm_head.weight", "token_embd.weight")))
      fail(raw.path, "tensor 'model.embed_tokens.weight'", "present", "missing");
  }
  if (!tied) take("lm_head.weight", "output.weight");
  take("model.norm.weight", "output_norm.weight");
  for (uint64_t l = 0; l < p.n_layers; ++l) {
    const std::string hf = fmt::format("model.layers.{}.", l), g = fmt::format("blk.{}.", l);
    take(hf + "input_layernorm.weight", g + "attn_norm.weight");
    take(hf + "post_attention_layernorm.weight", g + "ffn_norm.weight");
    take(hf + "self_attn.v_proj.weight", g + "attn_v.weight");
    take(hf + "self_attn.o_proj.weight", g + "attn_output.weight");
    take(hf + "mlp.gate_proj.weight", g + "ffn_gate.weight");
    take(hf + "mlp.up_proj.weight", g + "ffn_up.weight");
    take(hf + "mlp.down_proj.weight", g + "ffn_down.weight");
    for (const char* qk : {"q", "k"}) {
      const WeightTensor* t = raw.find(hf + "self_attn." + qk + "_proj.weight");
      if (!t) continue;
      if (t->shape.size() != 2 || t->shape[0] % head_dim != 0)
        fail(raw.path, "tensor '" + t->name + "' shape",
             fmt::format("[n_heads * {}, hidden_size]", head_dim), t->shape_string());
      const uint64_t row_bytes = t->bytes / t->shape[0];
      auto buf = std::make_shared<std::vector<uint8_t>>(t->bytes);
      for (uint64_t row = 0; row < t->shape[0]; ++row)
        std::memcpy(buf->data() + row * row_bytes,
                    t->data + rope_interleaved_source_row(row, head_dim) * row_bytes, row_bytes);
      WeightTensor c = *t;
      c.name = g + "attn_" + qk + ".weight";
      c.data = buf->data();
      src.owners.push_back(buf);
      src.add(std::move(c));
    }
  }
  // A layer at or past num_hidden_layers would be ignored silently.
  const std::string layers_prefix = "model.layers.";
  for (const auto& t : raw.tensors) {
    if (t.name.rfind(layers_prefix, 0) != 0) continue;
    uint64_t layer = 0;
    size_t i = layers_prefix.size();
    for (; i < t.name.size() && i < layers_prefix.size() + 8 && t.name[i] >= '0' && t.name[i] <= '9'; ++i)
      layer = layer * 10 + static_cast<uint64_t>(t.name[i] - '0');
    if (i > layers_prefix.size() && layer >= p.n_layers)
      fail(config_path, "num_hidden_layers", fmt::format("at least {} (the weights have '{}')", layer + 1, t.name),
           std::to_string(p.n_layers));
  }
  // Tokenizer: tokenizer.json beside the weights, if any.
  const fs::path tj = dir / "tokenizer.json";
  if (fs::exists(tj, ec)) {
    TokenizerData tok = load_tokenizer_json(tj.string());
    tok.bos_id = json_get_or<int32_t>(config, "bos_token_id", tok.bos_id, config_path);
    tok.eos_id = json_get_or<int32_t>(config, "eos_token_id", tok.eos_id, config_path);
    const fs::path tc = dir / "tokenizer_config.json";
    if (fs::exists(tc, ec)) {
      const json tcj = parse_json(read_text_file(tc.string()), tc.string());
      tok.add_bos = json_get_or<bool>(tcj, "add_bos_token", true, tc.string());
    }
    src.tokenizer = std::move(tok);
  }
  return src;
}

}  // namespace ffn
