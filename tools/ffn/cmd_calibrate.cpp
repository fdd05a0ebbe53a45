#include <fmt/format.h>

#include <memory>

#include "commands.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "model/loaded_model.h"
#include "progress.h"
#include "transform/activation_stats.h"

namespace ffn::cli {

namespace {
struct CalibrateOptions {
  std::string model, tokenizer, text, out;
  int64_t tokens = 16384;
  int64_t sampled = 0;
  int ctx = 256;
  int threads = 0;
  bool no_progress = false;
};
}  // namespace

Command add_calibrate(CLI::App& app) {
  auto o = std::make_shared<CalibrateOptions>();
  app.add_option("-m,--model", o->model, "model file")->required();
  app.add_option("-z,--tokenizer", o->tokenizer, "tokenizer file");
  app.add_option("-f,--file", o->text, "calibration text")->required();
  app.add_option("-o,--output", o->out, "statistics file to write: .json, or .gguf (GGUF keys and F32 tensors)")->required();
  app.add_option("--tokens", o->tokens, "tokens of the text to run")->capture_default_str()->check(CLI::Range(1, 1 << 30));
  app.add_option("--sampled-tokens", o->sampled,
                 "tokens kept for quantiles (default: as many as fit 4 MiB per site and layer, at most 4096)")
      ->check(CLI::Range(0, 1 << 24));
  app.add_option("-c,--ctx", o->ctx, "window size incl. BOS")->capture_default_str()->check(CLI::Range(2, 1 << 20));
  app.add_option("-t,--threads", o->threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
  app.add_flag("--no-progress", o->no_progress, "no progress bar");
  return [o] {
    if (o->threads > 0) ThreadPool::set_global_threads(o->threads);
    ThreadPool& pool = ThreadPool::global();
    LoadedModel lm = load_model(o->model, o->tokenizer);
    const Tokenizer& tok = lm.require_tokenizer();
    const auto stream = tok.encode(read_text_file(o->text));
    const int64_t hidden = lm.model->config().hidden_dim;
    const int64_t sampled = o->sampled > 0 ? o->sampled : std::clamp<int64_t>((1 << 20) / hidden, 64, 4096);
    const int64_t ctx = std::min<int64_t>(o->ctx, lm.model->config().context_length);
    Progress progress("calibrate", !o->no_progress);
    ActivationStats st = collect_activation_stats(*lm.model, stream, tok.bos(), ctx, o->tokens, sampled, pool,
                                                  [&](int64_t d, int64_t t) { progress.update(d, t); });
    progress.finish();
    st.model = o->model;
    st.text = o->text;
    save_activation_stats(st, o->out);
    fmt::print("{}: activation statistics of {} layers over {} tokens ({} sampled for quantiles)\n", o->out,
               st.layers.size(), st.tokens, st.sampled_tokens);
    return 0;
  };
}

}  // namespace ffn::cli
