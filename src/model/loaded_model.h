// Everything needed to run a checkpoint: its source (tensors stay mapped),
// the model and its tokenizer. The one entry point for tools and tests.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "io/model_source.h"
#include "ffn/sparsity_meter.h"
#include "model/llama_model.h"
#include "model/tokenizer.h"

namespace ffn {

struct LoadedModel {
  ModelSource source;
  std::unique_ptr<LlamaModel> model;
  std::optional<Tokenizer> tokenizer;
  // Set when the file carries an activation-sparsity plan (already applied).
  std::unique_ptr<SparsityMeter> sparsity;
  std::string sparsity_spec;  // e.g. "teal:0.5", from the file

  // Throws ffn::Error naming the model file when it carries no tokenizer.
  const Tokenizer& require_tokenizer() const;
};

// path: GGUF, llama2.c checkpoint, or safetensors directory/file;
// tokenizer_path (optional): llama2.c tokenizer.bin, tokenizer.json or GGUF.
LoadedModel load_model(const std::string& path, const std::string& tokenizer_path = "");

}  // namespace ffn
