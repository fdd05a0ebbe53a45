#include <fmt/format.h>

#include <memory>

#include "commands.h"
#include "core/error.h"
#include "io/model_source.h"
#include "model/llama_model.h"
#include "transform/retype.h"

namespace ffn::cli {

namespace {
struct ConvertOptions {
  std::string model, tokenizer, out, type;
};
}  // namespace

Command add_convert(CLI::App& app) {
  auto o = std::make_shared<ConvertOptions>();
  app.add_option("-m,--model", o->model, "input model (GGUF, llama2.c .bin, safetensors)")->required();
  app.add_option("-z,--tokenizer", o->tokenizer, "tokenizer to embed (llama2.c tokenizer.bin, tokenizer.json)");
  app.add_option("-o,--output", o->out, "output GGUF file")->required();
  app.add_option("--type", o->type, "weight type of the output: f32, f16, bf16, q8_0, q4_0 (default: keep)");
  return [o] {
    ModelSource src = load_model_source(o->model, o->tokenizer);
    LlamaModel check(src);  // refuse to write a model we could not run
    if (!o->type.empty()) {
      const auto t = parse_dtype(o->type);
      if (!t) fail("--type", "value", "f32, f16, bf16, q8_0 or q4_0", o->type);
      src = retype(src, *t);
    }
    write_gguf(src, o->out);
    fmt::print(stderr, "wrote {} ({} tensors)\n", o->out, src.tensors.size());
    return 0;
  };
}

}  // namespace ffn::cli
