// ModelSource: what every loader produces — hyper-parameters, tokenizer and
// named weight tensors (GGUF names: token_embd.weight, blk.N.attn_q.weight,
// ...) — and what the GGUF writer consumes. It is the hub between file
// formats and the model: a loader never builds a model, a model never parses
// a file.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf_value.h"
#include "io/tokenizer_data.h"
#include "io/weight_tensor.h"

namespace ffn {

// Llama-family hyper-parameters. Values come straight from the file;
// model/llama_config.cpp checks them.
struct LlamaParams {
  uint64_t dim = 0;
  uint64_t hidden_dim = 0;
  uint64_t n_layers = 0;
  uint64_t n_heads = 0;
  uint64_t n_kv_heads = 0;
  uint64_t vocab_size = 0;
  uint64_t context_length = 0;
  uint64_t rope_dim = 0;      // rotated dimensions per head (== head_dim for Llama)
  double rope_base = 10000.0;
  double rms_eps = 1e-5;
};

struct ModelSource {
  std::string path;    // file (or directory) it came from, for messages
  std::string format;  // "gguf", "llama2c", "safetensors"
  std::string arch = "llama";
  LlamaParams params;
  std::optional<TokenizerData> tokenizer;
  // Why `tokenizer` is empty although the file has one (e.g. a GGUF with a
  // gpt2 byte-level BPE vocabulary): the weights still run (bench, convert),
  // commands that need text say this. The file's tokenizer keys then travel
  // in extra_metadata unchanged.
  std::string tokenizer_unsupported;
  std::vector<WeightTensor> tensors;
  // Extra GGUF metadata kept for `inspect` and carried through conversion
  // (general.* keys other than architecture/alignment).
  std::vector<std::pair<std::string, GgufValue>> extra_metadata;
  // Keeps mappings and converted buffers alive for the views in `tensors`.
  std::vector<std::shared_ptr<const void>> owners;

  // A copy of everything but the tensors (path, format, parameters,
  // tokenizer, metadata, owners), for transforms that re-create the tensors.
  ModelSource without_tensors() const;

  const WeightTensor* find(const std::string& name) const;
  // Throws ffn::Error naming the file and tensor when absent.
  const WeightTensor& get(const std::string& name) const;
  void add(WeightTensor t);

 private:
  std::map<std::string, size_t> index_;
};

// Detects the format of `path` (GGUF magic, llama2.c header, a directory or
// .safetensors file) and loads it. `tokenizer_path` (may be empty) overrides
// or supplies the tokenizer (llama2.c tokenizer.bin or tokenizer.json).
ModelSource load_model_source(const std::string& path, const std::string& tokenizer_path = "");

// Writes a ModelSource as a GGUF file readable by llama.cpp (atomic).
void write_gguf(const ModelSource& src, const std::string& out_path);

}  // namespace ffn
