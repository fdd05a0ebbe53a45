#include <fmt/format.h>

#include <memory>

#include "commands.h"
#include "core/error.h"
#include "io/model_source.h"
#include "model/llama_model.h"
#include "transform/retype.h"

namespace ffn::cli {

namespace {
struct QuantizeOptions {
  std::string model, tokenizer, out, type;
};
}  // namespace

Command add_quantize(CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  app.add_option("-m,--model", o->model, "input model (GGUF, llama2.c .bin, safetensors)")->required();
  app.add_option("-z,--tokenizer", o->tokenizer, "tokenizer to embed (llama2.c tokenizer.bin, tokenizer.json)");
  app.add_option("-o,--output", o->out, "output GGUF file")->required();
  app.add_option("--type", o->type, "q8_0, q4_0, bf16, f16 or f32")->required();
  return [o] {
    const auto type = parse_dtype(o->type);
    if (!type) fail("--type", "value", "q8_0, q4_0, bf16, f16 or f32", o->type);
    ModelSource src = load_model_source(o->model, o->tokenizer);
    LlamaModel check(src);  // refuse to write a model we could not run
    const ModelSource out = retype(src, *type);
    write_gguf(out, o->out);
    uint64_t in_bytes = 0, out_bytes = 0;
    for (const auto& t : src.tensors) in_bytes += t.bytes;
    for (const auto& t : out.tensors) out_bytes += t.bytes;
    fmt::print(stderr, "wrote {}: {} tensors, {:.2f} MiB -> {:.2f} MiB of weights\n", o->out, out.tensors.size(),
               in_bytes / 1048576.0, out_bytes / 1048576.0);
    return 0;
  };
}

}  // namespace ffn::cli
