// Activation statistics (transform/activation_stats.h) as a GGUF file, for
// tools that already read GGUF: metadata under ffn.activation_stats.* and one
// F32 tensor per vector, named stats.<layer>.<field>:
//   stats.L.{attn_in,attn_out,ffn_in,ffn_mid}.{quantiles,error}
//   stats.L.{gate_act,chess_importance}.quantiles
//   stats.L.{up_abs_mean,firing_rate}
// save_activation_stats / load_activation_stats choose this format for a
// path ending in .gguf / a file starting with the GGUF magic.
#pragma once

#include <string>

#include "io/gguf_file.h"
#include "transform/activation_stats.h"

namespace ffn {

void save_activation_stats_gguf(const ActivationStats& stats, const std::string& path);
// Validates every key and tensor (type, shape, values); errors name the file
// and the key or tensor.
ActivationStats activation_stats_from_gguf(const GgufFile& file);

}  // namespace ffn
