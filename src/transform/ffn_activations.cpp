#include "transform/ffn_activations.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "model/llama_model.h"
#include "transform/calibration_run.h"

namespace ffn {

namespace {

class Recorder : public ActivationObserver {
 public:
  Recorder(FfnActivations& out, int64_t max_tokens) : out_(out), max_tokens_(max_tokens) {}


  void observe(int64_t layer, Site site, const float* data, int64_t n_tok, int64_t width) override {
    if (site != Site::FfnIn && site != Site::FfnMid) return;
    auto& dst = site == Site::FfnIn ? out_.x[size_t(layer)] : out_.h[size_t(layer)];
    const int64_t keep = std::min(n_tok, max_tokens_ - batch_start_);
    if (keep <= 0) return;
    dst.insert(dst.end(), data, data + keep * width);
  }

  // After each window: its tokens are stored (up to max_tokens), and the
  // next window's rows go after them in every layer.
  void end_batch(int64_t n_tok) { batch_start_ = out_.tokens = std::min(max_tokens_, batch_start_ + n_tok); }

 private:
  FfnActivations& out_;
  int64_t max_tokens_;
  int64_t batch_start_ = 0;
};

}  // namespace

FfnActivations record_ffn_activations(LlamaModel& model, const std::vector<int32_t>& tokens, int32_t bos, int64_t ctx,
                                      int64_t max_tokens, ThreadPool& pool) {
  const auto& c = model.config();
  FfnActivations out;
  out.d_model = c.dim;
  out.hidden = c.hidden_dim;
  out.x.resize(size_t(c.n_layers));
  out.h.resize(size_t(c.n_layers));
  Recorder recorder(out, max_tokens);
  // Each window records its BOS too, so max_tokens of text fill the record.
  run_calibration(model, recorder, tokens, bos, ctx, max_tokens, pool,
                  [&](int64_t, int64_t, int64_t window) { recorder.end_batch(window); });
  for (int64_t l = 0; l < c.n_layers; ++l)
    if (int64_t(out.h[size_t(l)].size()) != out.tokens * out.hidden)
      throw Error(fmt::format("calibration: layer {} reported no FFN intermediate activations (is its FFN dense?)", l));
  return out;
}

}  // namespace ffn
