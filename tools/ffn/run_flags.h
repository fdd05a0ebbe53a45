// The flags of the commands that run a model (generate, perplexity, bench):
// -t/--threads, --moe-top-k and --sparsity/--calib, and the model as they
// leave it.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "ffn/sparsity_meter.h"
#include "model/loaded_model.h"
#include "moe_flags.h"
#include "sparsity_flags.h"

namespace ffn::cli {

struct LoadedRun {
  LoadedModel lm;
  std::unique_ptr<SparsityMeter> flag_meter;  // --sparsity's plan, when given
  // Where the run's sparsity is measured: --sparsity's plan, else the one
  // the file carries; null when neither.
  SparsityMeter* meter = nullptr;
  std::string sparsity_label;  // that plan as printed (sparsity_label()); empty when none
};

struct RunFlags {
  int threads = 0;  // 0: all cores
  MoeFlags moe;
  SparsityFlags sparsity;

  void add(CLI::App& app);
  // Sizes the global thread pool, loads the model and applies --moe-top-k
  // and --sparsity to it.
  LoadedRun load(const std::string& model, const std::string& tokenizer = "") const;
};

}  // namespace ffn::cli
