#include <fmt/format.h>

#include <memory>
#include <optional>

#include "commands.h"
#include "core/error.h"
#include "io/model_source.h"
#include "core/thread_pool.h"
#include "model/llama_model.h"
#include "model/tokenizer.h"
#include "core/mapped_file.h"
#include "transform/ffn_activations.h"
#include "transform/ffn_transform.h"
#include "transform/retype.h"
#include "transform/sparse_file.h"
#include "transform/sparsify.h"

namespace ffn::cli {

namespace {
struct ConvertOptions {
  std::string model, tokenizer, out, type;
  std::string sparsity, calib, ffn;
  int64_t calib_tokens = 8192;
};
}  // namespace

Command add_convert(CLI::App& app) {
  auto o = std::make_shared<ConvertOptions>();
  app.add_option("-m,--model", o->model, "input model (GGUF, llama2.c .bin, safetensors)")->required();
  app.add_option("-z,--tokenizer", o->tokenizer, "tokenizer to embed (llama2.c tokenizer.bin, tokenizer.json)");
  app.add_option("-o,--output", o->out, "output GGUF file")->required();
  app.add_option("--type", o->type, "weight type of the output: f32, f16, bf16, q8_0, q4_0 (default: keep)");
  app.add_option("--sparsity", o->sparsity,
                 "write activation sparsity METHOD:TARGET (teal|cats|chess|chess-ffn|stat-topk|topk): thresholds as metadata, "
                 "matrices read by input stored transposed");
  app.add_option("--ffn", o->ffn,
                 "rewrite every FFN: moe:experts=E,top_k=K[,shared=S][,split=cluster|coact|taylor] (dense -> MoE, "
                 "needs --calib TEXT), upcycle:experts=E,top_k=K[,noise=S] (dense -> copied experts), average "
                 "(MoE -> dense)");
  app.add_option("--calib", o->calib,
                 "calibration text (--ffn moe, --sparsity), or statistics from `ffn calibrate` (--sparsity)");
  app.add_option("--calib-tokens", o->calib_tokens, "tokens of a --calib text to calibrate on")->capture_default_str();
  return [o] {
    ModelSource src = load_model_source(o->model, o->tokenizer);
    LlamaModel model(src);  // refuse to write a model we could not run
    if (!o->ffn.empty()) {
      if (!o->sparsity.empty()) fail("--ffn", "combination", "--ffn or --sparsity, one at a time", "both");
      const bool calibrate = ffn_transform_needs_calibration(o->ffn);
      ThreadPool& pool = ThreadPool::global();
      std::optional<FfnActivations> acts;
      if (calibrate) {
        if (o->calib.empty()) fail("--ffn " + o->ffn, "--calib", "a calibration text", "none");
        if (!src.tokenizer) fail(o->model, "tokenizer", "one, to read --calib text (or pass -z)", "none");
        const Tokenizer tok(*src.tokenizer, o->model);
        const int64_t ctx = std::min<int64_t>(256, model.config().context_length);
        acts = record_ffn_activations(model, tok.encode(read_text_file(o->calib)), tok.bos(), ctx,
                                      ffn_calibration_tokens(model, o->calib_tokens), pool);
      }
      src = transform_ffn(src, model, o->ffn, acts ? &*acts : nullptr, pool);
    }
    if (!o->type.empty()) {
      const auto t = parse_dtype(o->type);
      if (!t) fail("--type", "value", "f32, f16, bf16, q8_0 or q4_0", o->type);
      src = retype(src, *t);
    }
    if (!o->sparsity.empty()) {
      if (model.needs_sparsity_plan() || read_sparsity_plan(src, model.config()))
        fail(o->model, "ffn.sparsity.method", "a dense model for --sparsity", "a file that already carries a plan");
      std::optional<Tokenizer> tok;
      if (src.tokenizer) tok.emplace(*src.tokenizer, o->model);
      ThreadPool& pool = ThreadPool::global();
      const SparsityPlan plan =
          calibrated_plan(model, o->sparsity, o->calib, &pool, tok ? &*tok : nullptr, o->calib_tokens);
      src = with_sparsity_plan(src, plan, &pool);
    }
    write_gguf(src, o->out);
    fmt::print(stderr, "wrote {} ({} tensors)\n", o->out, src.tensors.size());
    return 0;
  };
}

}  // namespace ffn::cli
