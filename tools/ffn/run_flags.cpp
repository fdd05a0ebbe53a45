#include "run_flags.h"

#include "core/thread_pool.h"
#include "kernels/amx_packed.h"

namespace ffn::cli {

void RunFlags::add(CLI::App& app) {
  app.add_option("-t,--threads", threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
  sparsity.add(app);
  moe.add(app);
}

LoadedRun RunFlags::load(const std::string& model, const std::string& tokenizer) const {
  if (threads > 0) ThreadPool::set_global_threads(threads);
  // The AMX decision (tile permission, self-check, any warning) at start-up,
  // not inside the first prompt's products.
  amx_support();
  sparsity.place_rows();
  LoadedRun run;
  run.lm = load_model(model, tokenizer);
  moe.apply(*run.lm.model);
  run.flag_meter = sparsity.apply(run.lm, ThreadPool::global());
  run.meter = run.flag_meter ? run.flag_meter.get() : run.lm.sparsity.get();
  if (run.meter) run.sparsity_label = sparsity_label(run.lm, sparsity.spec);
  return run;
}

}  // namespace ffn::cli
