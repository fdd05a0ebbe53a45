// libFuzzer target: llama2.c tokenizer.bin (for a 512-token model, like
// tok512.bin) -> Tokenizer -> encode/decode.
#include "fuzz_common.h"
#include "io/llama2c_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const ffn::TokenizerData tok = ffn::load_llama2c_tokenizer(data, size, "fuzz_tokenizer.bin", 512);
    ffn::fuzz::exercise_tokenizer(tok, "fuzz_tokenizer.bin");
  } catch (const ffn::Error&) {
  }
  return 0;
}
