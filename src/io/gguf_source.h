// GGUF file -> ModelSource (Llama architecture) and ModelSource -> GGUF.
#pragma once

#include <memory>
#include <string>

#include "io/gguf_file.h"
#include "io/model_source.h"

namespace ffn {

// Reads hyper-parameters ("llama.*"), tokenizer ("tokenizer.ggml.*") and
// tensors. The GgufFile is kept alive by the returned source.
ModelSource model_source_from_gguf(std::shared_ptr<const GgufFile> gguf);

// The tokenizer embedded in a GGUF file, or nullopt if it has none.
std::optional<TokenizerData> tokenizer_from_gguf(const GgufFile& gguf);

}  // namespace ffn
