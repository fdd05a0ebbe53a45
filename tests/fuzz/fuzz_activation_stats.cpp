// libFuzzer target: activation statistics, JSON or GGUF (`ffn calibrate -o`) ->
// ActivationStats -> a sparsity plan for every calibrated method, checked
// against a model of the file's own width.
#include <string>

#include "fuzz_common.h"
#include "io/gguf_file.h"
#include "transform/activation_stats.h"
#include "transform/activation_stats_gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const bool gguf = size >= 4 && std::string(reinterpret_cast<const char*>(data), 4) == "GGUF";
    const ffn::ActivationStats st =
        gguf ? ffn::activation_stats_from_gguf(ffn::GgufFile(data, size, "fuzz.gguf"))
             : ffn::parse_activation_stats(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
    for (const auto& L : st.layers)
      for (double s : {0.0, 0.3, 0.999}) {
        (void)L.attn_in.threshold(s);
        (void)L.ffn_mid.error_at(s);
        (void)L.chess_importance.threshold(s);
      }
  } catch (const ffn::Error&) {
  }
  return 0;
}
