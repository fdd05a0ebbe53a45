// Activation statistics of a model on calibration text: everything the
// activation-sparsity methods need to pick thresholds for any target, and
// what `ffn inspect --activations` prints.
//
// Per layer and site (the inputs of the linear layers, see Site):
//  - quantiles of |x| (kQuantiles points, q = i / (kQuantiles - 1)): the
//    threshold reaching sparsity s is the s-quantile (TEAL, CATS);
//  - TEAL's error curve: the relative output error of the site's linear
//    layers when its smallest fraction s of inputs is dropped, estimated as
//    sum(x_j^2 |W_:j|^2 over dropped j) / sum(x_j^2 |W_:j|^2), at
//    s = i / (kErrorPoints - 1) — what the greedy allocation minimises;
// Per layer and FFN neuron:
//  - E|u_i|, the mean magnitude of the up projection (CHESS);
//  - quantiles of CHESS's importance |SiLU(g_i)| * E|u_i|;
//  - firing rate: the fraction of tokens where |h_i| exceeds the layer's
//    median |h| (the "lazy neuron" picture).
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ffn/activation_observer.h"

namespace ffn {

class LlamaModel;

inline constexpr int kQuantiles = 201;   // 0.5% steps
inline constexpr int kErrorPoints = 101;  // 1% steps

struct SiteStats {
  std::vector<float> quantiles;  // kQuantiles values of |x|, ascending
  std::vector<float> error;      // kErrorPoints relative errors (linear-input sites only)

  // Threshold on |x| that drops a fraction `sparsity` (linear interpolation).
  float threshold(double sparsity) const;
  // Relative error at `sparsity` (linear interpolation).
  double error_at(double sparsity) const;
};

struct LayerActivationStats {
  SiteStats attn_in, attn_out, ffn_in, ffn_mid;
  SiteStats gate_act;                    // |SiLU(g)| (CATS)
  SiteStats chess_importance;            // |SiLU(g_i)| * E|u_i| (CHESS)
  std::vector<float> up_abs_mean;        // E|u_i|, hidden values
  std::vector<float> firing_rate;        // hidden values in [0, 1]
};

struct ActivationStats {
  std::string model;      // file the statistics were collected on
  std::string text;       // calibration text file
  int64_t tokens = 0;     // tokens run
  int64_t sampled_tokens = 0;  // tokens whose activations were kept for quantiles
  int64_t d_model = 0, hidden = 0;
  std::vector<LayerActivationStats> layers;
};

// Collects statistics while attached to a dense Llama model
// (model.set_observer(&collector)). Quantiles come from a uniform reservoir
// sample of whole tokens (at most max_sampled_tokens of them); E|u| is over
// every token.
class ActivationCollector : public ActivationObserver {
 public:
  ActivationCollector(const LlamaModel& model, int64_t max_sampled_tokens, uint64_t seed = 1);
  void observe(int64_t layer, Site site, const float* data, int64_t n_tok, int64_t width) override;
  // Computes the statistics (reads the model's weights for the error curves).
  ActivationStats finish(const LlamaModel& model) const;

 private:
  struct LayerSamples {
    // Per site: sampled token rows of |x| (or |SiLU(g)| for the gate).
    std::vector<float> rows[kSiteCount];
    std::vector<double> up_abs_sum;
  };
  int64_t d_model_, hidden_, capacity_;
  std::vector<LayerSamples> layers_;
  std::mt19937_64 rng_;
  int64_t tokens_ = 0;          // tokens seen
  std::vector<int64_t> slot_;   // reservoir slot of each token of the batch, -1 = not kept
};

// Runs the model over `tokens` in windows of ctx (each starting with BOS and
// a fresh cache) until max_tokens have been run, collecting statistics.
// progress(done, total) is called after each window (may be empty).
ActivationStats collect_activation_stats(LlamaModel& model, const std::vector<int32_t>& tokens, int32_t bos,
                                         int64_t ctx, int64_t max_tokens, int64_t max_sampled_tokens,
                                         class ThreadPool& pool,
                                         const std::function<void(int64_t, int64_t)>& progress = {});

// JSON, or GGUF when path ends in ".gguf" (transform/activation_stats_gguf.h).
void save_activation_stats(const ActivationStats& stats, const std::string& path);
// Either format (GGUF by its magic). Validates every field; errors name the
// file and the field.
ActivationStats load_activation_stats(const std::string& path);
// The JSON format from the file's text (`path` only names it in errors).
ActivationStats parse_activation_stats(const std::string& text, const std::string& path);
// The checks both formats share: every vector's length, finite non-negative
// values, ascending quantiles, firing rates in [0, 1].
void validate_activation_stats(const ActivationStats& stats, const std::string& path);

}  // namespace ffn
