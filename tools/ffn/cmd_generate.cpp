#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "commands.h"
#include "run_flags.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "model/loaded_model.h"
#include "model/sampler.h"

namespace ffn::cli {

namespace {
struct GenerateOptions {
  RunFlags run;  // -t, --moe-top-k, --sparsity
  std::string model, tokenizer, prompt = "Once upon a time";
  int n = 64;
  int ctx = 0;
  SamplerParams sampler;
};
}  // namespace

Command add_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  app.add_option("-m,--model", o->model, "model file (GGUF, llama2.c .bin, safetensors dir)")->required();
  app.add_option("-z,--tokenizer", o->tokenizer, "tokenizer (llama2.c tokenizer.bin, tokenizer.json)");
  app.add_option("-p,--prompt", o->prompt, "prompt text")->capture_default_str();
  app.add_option("-n,--n-predict", o->n, "tokens to generate")->capture_default_str()->check(CLI::Range(0, 1 << 20));
  app.add_option("-c,--ctx", o->ctx, "context size (default: model's, at most prompt + n)")->check(CLI::Range(0, 1 << 24));
  app.add_option("--temp", o->sampler.temperature, "temperature (0 = greedy)")->capture_default_str()->check(CLI::Range(0.0, 100.0));
  app.add_option("--top-k", o->sampler.top_k, "top-k (0 = off)")->capture_default_str();
  app.add_option("--top-p", o->sampler.top_p, "top-p (1 = off)")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", o->sampler.seed, "random seed")->capture_default_str();
  o->run.add(app);
  return [o] {
    LoadedRun run = o->run.load(o->model, o->tokenizer);
    ThreadPool& pool = ThreadPool::global();
    LoadedModel& lm = run.lm;
    SparsityMeter* meter = run.meter;
    const Tokenizer& tok = lm.require_tokenizer();
    LlamaModel& model = *lm.model;

    std::vector<int32_t> ids;
    if (tok.add_bos()) ids.push_back(tok.bos());
    const auto prompt_ids = tok.encode(o->prompt);
    ids.insert(ids.end(), prompt_ids.begin(), prompt_ids.end());
    if (ids.empty()) ids.push_back(tok.bos());
    const int64_t want = static_cast<int64_t>(ids.size()) + o->n;
    int64_t ctx = o->ctx > 0 ? o->ctx : std::min<int64_t>(model.config().context_length, want);
    if (static_cast<int64_t>(ids.size()) >= ctx + 1)
      throw ffn::Error(fmt::format("the prompt has {} tokens, more than the context size {}", ids.size(), ctx));
    KvCache cache = model.make_cache(ctx);
    Sampler sampler(o->sampler);
    Tensor logits;

    fmt::print("{}", tok.decode(prompt_ids));
    std::fflush(stdout);
    Timer prefill_timer;
    model.forward(ids.data(), static_cast<int64_t>(ids.size()), cache, logits, false, pool);
    const double prefill_s = prefill_timer.seconds();

    Timer decode_timer;
    int generated = 0;
    bool first_piece = prompt_ids.empty();
    for (; generated < o->n; ++generated) {
      const int32_t next = sampler.sample(logits.row(0), model.config().vocab_size);
      if (next == tok.eos()) break;
      std::string piece = tok.piece(next);
      if (first_piece && tok.add_space_prefix() && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
      first_piece = false;
      fmt::print("{}", piece);
      std::fflush(stdout);
      if (cache.size() >= cache.capacity()) {
        ++generated;
        break;
      }
      model.forward(&next, 1, cache, logits, false, pool);
    }
    const double decode_s = decode_timer.seconds();
    fmt::print("\n");
    std::fflush(stdout);
    std::string extra;
    if (meter) extra += fmt::format(" | sparsity {:.1f}%", 100 * meter->achieved_sparsity());
    if (const MoeMeter& m = model.moe_meter(); m.tokens)
      extra += fmt::format(" | {:.2f} experts/token", m.ffn_experts_per_token());
    fmt::print(stderr, "prompt: {} tokens, {:.1f} tok/s | decode: {} tokens, {:.1f} tok/s | threads {}{}\n",
               ids.size(), ids.size() / std::max(prefill_s, 1e-9), generated,
               generated / std::max(decode_s, 1e-9), pool.size(), extra);
    return 0;
  };
}

}  // namespace ffn::cli
