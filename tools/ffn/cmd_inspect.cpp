#include <fmt/format.h>

#include <memory>

#include "commands.h"
#include "io/model_source.h"
#include "model/llama_config.h"
#include "model/tokenizer.h"

namespace ffn::cli {

namespace {
struct InspectOptions {
  std::string model, tokenizer;
};
}  // namespace

Command add_inspect(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  app.add_option("-m,--model", o->model, "model file")->required();
  app.add_option("-z,--tokenizer", o->tokenizer, "tokenizer file");
  return [o] {
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
    return 0;
  };
}

}  // namespace ffn::cli
