#include "moe_flags.h"

#include "model/moe_params.h"

namespace ffn::cli {

void MoeFlags::add(CLI::App& app) {
  app.add_option("--moe-top-k", top_k, "mixture of experts: experts per token (default: the model file's)")
      ->check(CLI::Range(int64_t(1), int64_t(65536)));
}

void MoeFlags::apply(LlamaModel& model) const {
  if (top_k > 0) set_moe_top_k(model, top_k);
}

}  // namespace ffn::cli
