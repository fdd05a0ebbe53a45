// libFuzzer target: Hugging Face tokenizer.json -> Tokenizer -> encode/decode.
#include <string>

#include "fuzz_common.h"
#include "io/safetensors_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const ffn::TokenizerData tok = ffn::load_tokenizer_json(text, "fuzz/tokenizer.json");
    ffn::fuzz::exercise_tokenizer(tok, "fuzz/tokenizer.json");
  } catch (const ffn::Error&) {
  }
  return 0;
}
