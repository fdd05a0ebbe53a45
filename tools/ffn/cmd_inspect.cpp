#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "commands.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "model/loaded_model.h"
#include "transform/activation_stats.h"
#include "io/model_source.h"
#include "model/llama_config.h"
#include "model/tokenizer.h"

namespace ffn::cli {

namespace {
struct InspectOptions {
  std::string model, tokenizer;
  bool activations = false;
  std::string text;
  int64_t tokens = 4096;
};

// The "lazy neuron" picture: per layer, how concentrated the FFN's
// intermediate activations are and how much sparsity would cost.
void print_activation_summary(const ActivationStats& st) {
  fmt::print("\nFFN activations over {} tokens of {} ({} sampled)\n", st.tokens, st.text, st.sampled_tokens);
  fmt::print("{:>5} {:>10} {:>10} {:>10} {:>9} {:>9} {:>13} {:>13} {:>13}\n", "layer", "|h| p50", "|h| p90",
             "|h| p99", "lazy<10%", "busy>90%", "err@50% mid", "err@50% in", "err@50% attn");
  for (size_t l = 0; l < st.layers.size(); ++l) {
    const auto& L = st.layers[l];
    int64_t lazy = 0, busy = 0;
    for (float f : L.firing_rate) {
      lazy += f < 0.1f;
      busy += f > 0.9f;
    }
    const double n = double(L.firing_rate.size());
    fmt::print("{:>5} {:>10.4g} {:>10.4g} {:>10.4g} {:>8.1f}% {:>8.1f}% {:>12.2f}% {:>12.2f}% {:>12.2f}%\n", l,
               L.ffn_mid.threshold(0.5), L.ffn_mid.threshold(0.9), L.ffn_mid.threshold(0.99), 100 * lazy / n,
               100 * busy / n, 100 * L.ffn_mid.error_at(0.5), 100 * L.ffn_in.error_at(0.5),
               100 * L.attn_in.error_at(0.5));
  }
  fmt::print("lazy<10%: neurons whose |h| exceeds the layer's median on fewer than 10% of tokens (busy: >90%).\n"
             "err@50%: TEAL's estimate of the relative output error when the smallest half of the inputs of down\n"
             "(mid), gate/up (in) or q/k/v (attn) is dropped.\n");
}
}  // namespace

Command add_inspect(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  app.add_option("-m,--model", o->model, "model file")->required();
  app.add_option("-z,--tokenizer", o->tokenizer, "tokenizer file");
  app.add_flag("--activations", o->activations, "also run the model on -f TEXT and summarise FFN activations");
  app.add_option("-f,--file", o->text, "text for --activations");
  app.add_option("--tokens", o->tokens, "tokens of the text to run for --activations")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 30));
  return [o] {
    if (o->activations && o->text.empty()) throw Error("inspect --activations: needs -f TEXT");
    const ModelSource src = load_model_source(o->model, o->tokenizer);
    const LlamaConfig c = LlamaConfig::from(src);
    fmt::print("file:          {}\nformat:        {}\narchitecture:  {}\n", src.path, src.format, src.arch);
    fmt::print("dim:           {}\nffn hidden:    {}\nlayers:        {}\nheads:         {} (kv {}, head dim {})\n",
               c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim);
    fmt::print("vocab:         {}\ncontext:       {}\nrope:          dims {}, base {:g}\nrms eps:       {:g}\n",
               c.vocab_size, c.context_length, c.rope_dim, c.rope_base, c.rms_eps);
    if (src.tokenizer) {
      const Tokenizer tok(*src.tokenizer, o->tokenizer.empty() ? src.path : o->tokenizer);
      const auto& d = tok.data();
      fmt::print("tokenizer:     {} BPE by {}, {} tokens, bos {} eos {} unk {}, add_bos {}, space prefix {}\n",
                 d.model, tok.uses_merges() ? fmt::format("{} ranked merges", d.merges.size()) : "piece scores",
                 d.tokens.size(), d.bos_id, d.eos_id, d.unk_id, d.add_bos, d.add_space_prefix);
      const auto sample = tok.encode("Once upon a time");
      fmt::print("  \"Once upon a time\" -> [");
      for (size_t i = 0; i < sample.size(); ++i) fmt::print("{}{}", i ? ", " : "", sample[i]);
      fmt::print("]\n");
    } else {
      fmt::print("tokenizer:     none (pass -z)\n");
    }
    for (const auto& [key, value] : src.extra_metadata) fmt::print("{:<14} {}\n", key + ":", value.to_display());
    uint64_t total = 0;
    fmt::print("\n{:<32} {:<6} {:<16} {:>12}\n", "tensor", "type", "shape", "bytes");
    for (const auto& t : src.tensors) {
      fmt::print("{:<32} {:<6} {:<16} {:>12}\n", t.name, dtype_name(t.type), t.shape_string(), t.bytes);
      total += t.bytes;
    }
    fmt::print("{} tensors, {} bytes ({:.2f} MiB)\n", src.tensors.size(), total, total / 1048576.0);
    if (o->activations) {
      LoadedModel lm = load_model(o->model, o->tokenizer);
      const Tokenizer& tok = lm.require_tokenizer();
      const auto stream = tok.encode(read_text_file(o->text));
      const int64_t ctx = std::min<int64_t>(256, lm.model->config().context_length);
      const int64_t sampled = std::clamp<int64_t>((1 << 20) / lm.model->config().hidden_dim, 64, 4096);
      ActivationStats st =
          collect_activation_stats(*lm.model, stream, tok.bos(), ctx, o->tokens, sampled, ThreadPool::global());
      st.text = o->text;
      print_activation_summary(st);
    }
    return 0;
  };
}

}  // namespace ffn::cli
