// --moe-top-k K, shared by generate, perplexity and bench: run a mixture-of-
// experts model with another number of experts per token than its file says.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>

namespace ffn {
class LlamaModel;
}  // namespace ffn

namespace ffn::cli {

struct MoeFlags {
  int64_t top_k = 0;  // 0: the file's

  void add(CLI::App& app);
  void apply(LlamaModel& model) const;
};

}  // namespace ffn::cli
