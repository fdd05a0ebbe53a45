// --sparsity METHOD:TARGET, --calib FILE and --sparse-rows, shared by
// generate, perplexity and bench (report takes --sparse-rows too).
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
  std::string rows = "auto";  // --sparse-rows: kernels/row_placement.h

  void add(CLI::App& app);
  // Makes --sparse-rows the placement of the sparse forms packed from here
  // on (call before loading: a file's own plan is applied at load).
  void place_rows() const;
  // Null when --sparsity was not given (then the model file's own plan, if
  // any, is what runs: LoadedModel::sparsity).
  std::unique_ptr<SparsityMeter> apply(LoadedModel& model, ThreadPool& pool) const;
};

// Adds --sparse-rows auto|packed|pages, stored in `rows`.
void add_sparse_rows_option(CLI::App& app, std::string& rows);

// The sparsity a run uses: the flag's, else the one the model file carries.
std::string sparsity_label(const LoadedModel& lm, const std::string& flag_spec);

}  // namespace ffn::cli
