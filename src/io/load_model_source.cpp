// Format detection: GGUF by magic, safetensors by directory or extension,
// llama2.c by elimination (its header has no magic in the legacy format).
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/gguf_source.h"
#include "io/llama2c_source.h"
#include "io/model_source.h"
#include "io/safetensors_source.h"

namespace ffn {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

ModelSource load_model_source(const std::string& path, const std::string& tokenizer_path) {
  // The error_code overloads: the throwing ones raise filesystem_error (not
  // an ffn::Error) for a name too long or a directory without permission.
  std::error_code ec;
  if (!fs::exists(path, ec)) fail(path, ec ? ec.message() : "no such file or directory");
  ModelSource src;
  if (fs::is_directory(path, ec) || ends_with(path, ".safetensors")) {
    src = load_safetensors_model(path);
  } else {
    auto file = std::make_shared<MappedFile>(path);
    uint32_t magic = 0;
    if (file->size() >= 4) std::memcpy(&magic, file->data(), 4);
    if (magic == 0x46554747) {
      file.reset();
      src = model_source_from_gguf(std::make_shared<GgufFile>(path));
    } else if (looks_like_llama2c(file->data(), file->size())) {
      const uint8_t* data = file->data();
      const size_t size = file->size();
      src = load_llama2c(data, size, path, std::move(file));
    } else {
      fail(path, "format", "a GGUF file, a llama2.c checkpoint or a safetensors model",
           "none of these (unknown magic)");
    }
  }
  if (!tokenizer_path.empty()) {
    if (ends_with(tokenizer_path, ".json")) {
      src.tokenizer = load_tokenizer_json(tokenizer_path);
    } else {
      MappedFile f(tokenizer_path);
      uint32_t magic = 0;
      if (f.size() >= 4) std::memcpy(&magic, f.data(), 4);
      if (magic == 0x46554747) {
        auto tok = tokenizer_from_gguf(GgufFile(tokenizer_path));
        if (!tok) fail(tokenizer_path, "tokenizer.ggml.model", "an embedded tokenizer", "none");
        src.tokenizer = std::move(tok);
      } else {
        src.tokenizer = load_llama2c_tokenizer(f.data(), f.size(), tokenizer_path, src.params.vocab_size);
      }
    }
    // The given tokenizer replaces an unsupported one the file carried.
    if (!src.tokenizer_unsupported.empty()) {
      src.tokenizer_unsupported.clear();
      std::erase_if(src.extra_metadata, [](const auto& kv) { return kv.first.rfind("tokenizer.", 0) == 0; });
    }
  }
  return src;
}

}  // namespace ffn
