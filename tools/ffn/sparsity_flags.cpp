#include "sparsity_flags.h"

#include <fmt/format.h>

#include "core/error.h"
#include "kernels/row_placement.h"
#include "model/loaded_model.h"
#include "transform/sparsify.h"

namespace ffn::cli {

void SparsityFlags::add(CLI::App& app) {
  app.add_option("--sparsity", spec,
                 "activation sparsity METHOD:TARGET, METHOD teal|cats|chess|chess-ffn|stat-topk|topk (e.g. teal:0.5)");
  app.add_option("--calib", calib,
                 "activation statistics from `ffn calibrate`, or a text to calibrate on (teal, cats, chess)");
  app.add_option("--calib-tokens", calib_tokens, "tokens of a --calib text to calibrate on")->capture_default_str();
  add_sparse_rows_option(app, rows);
}

void add_sparse_rows_option(CLI::App& app, std::string& rows) {
  app.add_option("--sparse-rows", rows,
                 "where the weight rows one token reads scattered sit: packed (back to back), pages (each "
                 "row of at most 4 KiB in a page of its own, ending it: faster scattered reads on Intel CPUs, "
                 "for up to 3.6x the memory of those rows) or auto (on Intel CPUs pages for rows of 2-4 KiB, "
                 "at most twice their memory, the others packed; elsewhere packed)")
      ->check(CLI::IsMember({"auto", "packed", "pages"}))
      ->capture_default_str();
}

void SparsityFlags::place_rows() const { set_sparse_row_placement(*parse_row_placement(rows)); }

std::unique_ptr<SparsityMeter> SparsityFlags::apply(LoadedModel& lm, ThreadPool& pool) const {
  if (spec.empty()) return nullptr;
  if (lm.sparsity)
    throw Error(fmt::format("--sparsity: {} already carries a sparsity plan ({}); give the dense model",
                            lm.source.path, "ffn.sparsity.method"));
  return sparsify(*lm.model, spec, calib, &pool, lm.tokenizer ? &*lm.tokenizer : nullptr, calib_tokens);
}

std::string sparsity_label(const LoadedModel& lm, const std::string& flag_spec) {
  return flag_spec.empty() ? lm.sparsity_spec + " (from the file)" : flag_spec;
}

}  // namespace ffn::cli
