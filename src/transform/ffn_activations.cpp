#include "transform/ffn_activations.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "model/llama_model.h"

namespace ffn {

namespace {

class Recorder : public ActivationObserver {
 public:
  Recorder(FfnActivations& out, int64_t max_tokens) : out_(out), max_tokens_(max_tokens) {}

  // Tokens of the current batch already stored, decided at the first layer
  // so that every layer keeps the same tokens.
  void begin_batch() { batch_start_ = out_.tokens; }

  void observe(int64_t layer, Site site, const float* data, int64_t n_tok, int64_t width) override {
    if (site != Site::FfnIn && site != Site::FfnMid) return;
    auto& dst = site == Site::FfnIn ? out_.x[size_t(layer)] : out_.h[size_t(layer)];
    const int64_t keep = std::min(n_tok, max_tokens_ - batch_start_);
    if (keep <= 0) return;
    dst.insert(dst.end(), data, data + keep * width);
  }

  void end_batch(int64_t n_tok) { out_.tokens = std::min(max_tokens_, batch_start_ + n_tok); }

 private:
  FfnActivations& out_;
  int64_t max_tokens_;
  int64_t batch_start_ = 0;
};

}  // namespace

FfnActivations record_ffn_activations(LlamaModel& model, const std::vector<int32_t>& tokens, int32_t bos, int64_t ctx,
                                      int64_t max_tokens, ThreadPool& pool) {
  if (tokens.empty()) throw Error("calibration: the text has no tokens");
  if (ctx < 2) throw Error(fmt::format("calibration: context {} too small (need at least 2)", ctx));
  const auto& c = model.config();
  FfnActivations out;
  out.d_model = c.dim;
  out.hidden = c.hidden_dim;
  out.x.resize(size_t(c.n_layers));
  out.h.resize(size_t(c.n_layers));
  Recorder recorder(out, max_tokens);
  model.set_observer(&recorder);
  KvCache cache = model.make_cache(ctx);
  Tensor logits;
  std::vector<int32_t> window;
  try {
    for (size_t done = 0; done < tokens.size() && out.tokens < max_tokens;) {
      const size_t n = std::min<size_t>(size_t(ctx - 1), tokens.size() - done);
      window.assign(1, bos);
      window.insert(window.end(), tokens.begin() + long(done), tokens.begin() + long(done + n));
      cache.clear();
      recorder.begin_batch();
      model.forward(window.data(), int64_t(window.size()), cache, logits, false, pool);
      recorder.end_batch(int64_t(window.size()));
      done += n;
    }
  } catch (...) {
    model.set_observer(nullptr);
    throw;
  }
  model.set_observer(nullptr);
  for (int64_t l = 0; l < c.n_layers; ++l)
    if (int64_t(out.h[size_t(l)].size()) != out.tokens * out.hidden)
      throw Error(fmt::format("calibration: layer {} reported no FFN intermediate activations (is its FFN dense?)", l));
  return out;
}

}  // namespace ffn
