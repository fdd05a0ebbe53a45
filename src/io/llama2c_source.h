// llama2.c checkpoints (Karpathy's llama2.c): the legacy format (7 int32
// header, negative vocab_size meaning an unshared classifier) and the
// version-1 "ak42" export; and llama2.c's tokenizer.bin.
#pragma once

#include <memory>
#include <string>

#include "core/mapped_file.h"
#include "io/model_source.h"

namespace ffn {

// True if the first bytes look like a llama2.c checkpoint (either version).
bool looks_like_llama2c(const uint8_t* data, size_t size);

// Parses a checkpoint image. `owner` keeps `data` alive (may be null when the
// caller guarantees the lifetime, as the fuzzer does).
ModelSource load_llama2c(const uint8_t* data, size_t size, const std::string& path,
                         std::shared_ptr<const void> owner);
ModelSource load_llama2c(const std::string& path);

// llama2.c tokenizer.bin: int32 max_token_length, then per token float32
// score, int32 length, bytes. The vocabulary size is not stored, so it is
// taken from the model (`vocab_size`).
TokenizerData load_llama2c_tokenizer(const uint8_t* data, size_t size, const std::string& path,
                                     uint64_t vocab_size);
TokenizerData load_llama2c_tokenizer(const std::string& path, uint64_t vocab_size);

}  // namespace ffn
