// Everything needed to run a checkpoint: its source (tensors stay mapped),
// the model and its tokenizer. The one entry point for tools and tests.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "io/model_source.h"
#include "model/llama_model.h"
#include "model/tokenizer.h"

namespace ffn {

struct LoadedModel {
  ModelSource source;
  std::unique_ptr<LlamaModel> model;
  std::optional<Tokenizer> tokenizer;

  // Throws ffn::Error naming the model file when it carries no tokenizer.
  const Tokenizer& require_tokenizer() const;
};

// path: GGUF, llama2.c checkpoint, or safetensors directory/file;
// tokenizer_path (optional): llama2.c tokenizer.bin, tokenizer.json or GGUF.
LoadedModel load_model(const std::string& path, const std::string& tokenizer_path = "");

}  // namespace ffn
