// --sparsity METHOD:TARGET and --calib FILE, shared by generate, perplexity
// and bench.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "ffn/sparsity_meter.h"

namespace ffn {
struct LoadedModel;
class ThreadPool;
}  // namespace ffn

namespace ffn::cli {

struct SparsityFlags {
  std::string spec;
  std::string calib;
  int64_t calib_tokens = 8192;

  void add(CLI::App& app);
  // Null when --sparsity was not given (then the model file's own plan, if
  // any, is what runs: LoadedModel::sparsity).
  std::unique_ptr<SparsityMeter> apply(LoadedModel& model, ThreadPool& pool) const;
};

// The sparsity a run uses: the flag's, else the one the model file carries.
std::string sparsity_label(const LoadedModel& lm, const std::string& flag_spec);

}  // namespace ffn::cli
