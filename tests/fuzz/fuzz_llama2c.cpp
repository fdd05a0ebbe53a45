// libFuzzer target: llama2.c checkpoint (legacy and v1 "ak42") -> LlamaModel.
#include "fuzz_common.h"
#include "io/llama2c_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)ffn::looks_like_llama2c(data, size);
    const ffn::ModelSource src = ffn::load_llama2c(data, size, "fuzz.bin", nullptr);
    ffn::fuzz::run_model(src);
  } catch (const ffn::Error&) {
  }
  return 0;
}
