#include <fmt/format.h>

#include <memory>

#include "commands.h"
#include "run_flags.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "eval/perplexity.h"
#include "model/loaded_model.h"
#include "model/moe_params.h"
#include "progress.h"

namespace ffn::cli {

namespace {
struct PerplexityOptions {
  RunFlags run;  // -t, --moe-top-k, --sparsity
  std::string model, tokenizer, text;
  int ctx = 0;
  bool json = false;
  bool no_progress = false;
};
}  // namespace

Command add_perplexity(CLI::App& app) {
  auto o = std::make_shared<PerplexityOptions>();
  app.add_option("-m,--model", o->model, "model file")->required();
  app.add_option("-z,--tokenizer", o->tokenizer, "tokenizer file");
  app.add_option("-f,--file", o->text, "text file")->required();
  app.add_option("-c,--ctx", o->ctx, "window size incl. BOS (default: model's context length)")->check(CLI::Range(0, 1 << 24));
  app.add_flag("--json", o->json, "print one JSON line {\"tokens\",\"nll\",\"ppl\"} on stdout");
  app.add_flag("--no-progress", o->no_progress, "no progress bar");
  o->run.add(app);
  return [o] {
    LoadedRun run = o->run.load(o->model, o->tokenizer);
    ThreadPool& pool = ThreadPool::global();
    LoadedModel& lm = run.lm;
    SparsityMeter* meter = run.meter;
    const Tokenizer& tok = lm.require_tokenizer();
    const std::string text = read_text_file(o->text);
    const auto stream = tok.encode(text);
    const int64_t ctx = o->ctx > 0 ? o->ctx : lm.model->config().context_length;
    Progress progress("perplexity", !o->no_progress);
    const PerplexityResult r = perplexity(*lm.model, stream, tok.bos(), ctx, pool,
                                          [&](int64_t done, int64_t total) { progress.update(done, total); });
    progress.finish();
    const MoeMeter& moe = lm.model->moe_meter();
    if (o->json) {
      fmt::print("{{\"tokens\":{},\"nll\":{:.9g},\"ppl\":{:.9g}{}{}}}\n", r.tokens, r.nll, r.ppl,
                 meter ? fmt::format(",\"sparsity\":\"{}\",\"achieved_sparsity\":{:.6f}", run.sparsity_label,
                                     meter->achieved_sparsity())
                       : std::string(),
                 moe.tokens ? fmt::format(",\"moe_experts_per_token\":{:.4f}", moe.ffn_experts_per_token()) : "");
    } else {
      fmt::print("tokens scored: {}\nmean NLL: {:.6f} nats\nperplexity: {:.4f}\n", r.tokens, r.nll, r.ppl);
      if (meter) fmt::print("sparsity: {} (achieved {:.2f}%)\n", run.sparsity_label, 100 * meter->achieved_sparsity());
      if (moe.tokens)
        fmt::print("experts: {:.2f} FFN experts per token and MoE layer (top-{})\n", moe.ffn_experts_per_token(),
                   moe_top_k(*lm.model));
    }
    return 0;
  };
}

}  // namespace ffn::cli
