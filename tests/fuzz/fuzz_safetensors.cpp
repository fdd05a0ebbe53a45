// libFuzzer target: safetensors image (8-byte header length, JSON header,
// data) -> tensors of a ModelSource, whose views are then read end to end.
#include "fuzz_common.h"
#include "io/safetensors_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    ffn::ModelSource src;
    src.path = "fuzz.safetensors";
    ffn::parse_safetensors(data, size, src.path, src, nullptr);
    ffn::fuzz::touch(src);
  } catch (const ffn::Error&) {
  }
  return 0;
}
