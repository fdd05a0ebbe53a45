// libFuzzer target: GGUF reader -> ModelSource -> Tokenizer and LlamaModel.
#include <memory>

#include "fuzz_common.h"
#include "io/gguf_file.h"
#include "io/gguf_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto gguf = std::make_shared<const ffn::GgufFile>(data, size, "fuzz.gguf");
    for (const auto& [key, value] : gguf->metadata()) (void)value.to_display();
    const ffn::ModelSource src = ffn::model_source_from_gguf(gguf);
    if (src.tokenizer) {
      try {
        ffn::fuzz::exercise_tokenizer(*src.tokenizer, src.path);
      } catch (const ffn::Error&) {
      }
    }
    ffn::fuzz::run_model(src);
  } catch (const ffn::Error&) {
  }
  return 0;
}
