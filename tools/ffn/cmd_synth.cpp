#include <fmt/format.h>

#include <memory>

#include "commands.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "io/model_source.h"
#include "transform/synthesize.h"

namespace ffn::cli {

namespace {
struct SynthOptions {
  std::string preset, out, type = "f16", arch;
  uint64_t seed = 1;
  uint64_t dim = 0, ffn = 0, layers = 0, heads = 0, kv_heads = 0, vocab = 0, ctx = 0;
  uint64_t experts = 0, experts_used = 0, shared_ffn = 0;
  int threads = 0;
};
}  // namespace

Command add_synth(CLI::App& app) {
  auto o = std::make_shared<SynthOptions>();
  std::string presets;
  for (const auto& n : synth_preset_names()) presets += (presets.empty() ? "" : "|") + n;
  app.add_option("--preset", o->preset, "shape: " + presets);
  app.add_option("-o,--output", o->out, "output GGUF file")->required();
  app.add_option("--type", o->type, "weight type: f32, f16, bf16, q8_0, q4_0")->capture_default_str();
  app.add_option("--arch", o->arch, "architecture: llama, qwen2, qwen2moe (default: the preset's, else llama)");
  app.add_option("--seed", o->seed, "random seed")->capture_default_str();
  app.add_option("--dim", o->dim, "model width (overrides the preset)");
  app.add_option("--ffn", o->ffn, "FFN hidden width");
  app.add_option("--layers", o->layers, "number of layers");
  app.add_option("--heads", o->heads, "attention heads");
  app.add_option("--kv-heads", o->kv_heads, "key/value heads");
  app.add_option("--vocab", o->vocab, "vocabulary size");
  app.add_option("--ctx", o->ctx, "context length");
  app.add_option("--experts", o->experts, "mixture of experts: experts per layer (--ffn is each expert's width)");
  app.add_option("--experts-used", o->experts_used, "mixture of experts: experts per token (top-k)");
  app.add_option("--shared-ffn", o->shared_ffn,
                 "mixture of experts: width of a sigmoid-gated shared expert (llama.cpp reads it for qwen2moe)");
  app.add_option("-t,--threads", o->threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
  return [o] {
    if (o->threads > 0) ThreadPool::set_global_threads(o->threads);
    SynthShape shape{"custom", 0, 0, 0, 0, 0, 32000, 2048};
    if (!o->preset.empty()) {
      auto p = synth_preset(o->preset);
      if (!p) fail("--preset", "value", "one of the listed presets (see --help)", o->preset);
      shape = *p;
    }
    auto set = [](uint64_t v, uint64_t& field) { if (v) field = v; };
    set(o->dim, shape.dim);
    set(o->ffn, shape.hidden_dim);
    set(o->layers, shape.n_layers);
    set(o->heads, shape.n_heads);
    set(o->kv_heads, shape.n_kv_heads);
    set(o->vocab, shape.vocab_size);
    set(o->ctx, shape.context_length);
    set(o->experts, shape.n_experts);
    set(o->experts_used, shape.n_experts_used);
    set(o->shared_ffn, shape.shared_hidden);
    if (!o->arch.empty()) shape.arch = o->arch;
    if (o->preset.empty() && o->kv_heads == 0) shape.n_kv_heads = shape.n_heads;
    const auto type = parse_dtype(o->type);
    if (!type) fail("--type", "value", "f32, f16, bf16, q8_0 or q4_0", o->type);
    Timer timer;
    const ModelSource src = synthesize(shape, *type, o->seed);
    write_gguf(src, o->out);
    uint64_t bytes = 0;
    for (const auto& t : src.tensors) bytes += t.bytes;
    std::string moe =
        shape.n_experts ? fmt::format(" experts {} top-{}", shape.n_experts, shape.n_experts_used) : "";
    if (shape.shared_hidden) moe += fmt::format(" shared {}", shape.shared_hidden);
    fmt::print(stderr, "wrote {}: {} {} {} dim {} ffn {}{} layers {} heads {}/{} vocab {}, {:.1f} MiB, {:.1f} s\n",
               o->out, shape.name, shape.arch, dtype_name(*type), shape.dim, shape.hidden_dim, moe, shape.n_layers,
               shape.n_heads, shape.n_kv_heads, shape.vocab_size, bytes / 1048576.0, timer.seconds());
    return 0;
  };
}

}  // namespace ffn::cli
