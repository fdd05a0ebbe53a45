#include "transform/sparsify.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "model/tokenizer.h"
#include "ffn/gated_ffn.h"
#include "model/llama_model.h"
#include "transform/activation_stats.h"

namespace ffn {

void plan_teal_layer(const LayerActivationStats& st, const LlamaModel& model, double target,
                     LayerSparsityPlan& out) {
  const auto& c = model.config();
  struct Site {
    const SiteStats* stats;
    double weights;
    double* sparsity;
  };
  Site sites[] = {
      {&st.attn_in, double(c.dim) * double(c.dim + 2 * c.kv_dim), &out.attn_in},
      {&st.attn_out, double(c.dim) * double(c.dim), &out.attn_out},
      {&st.ffn_in, 2.0 * double(c.dim) * double(c.hidden_dim), &out.ffn_in},
      {&st.ffn_mid, double(c.dim) * double(c.hidden_dim), &out.ffn_mid},
  };
  double total = 0;
  for (const auto& s : sites) total += s.weights;
  const double step = 0.005 * total;  // weights skipped per greedy step
  constexpr double kMaxSiteSparsity = 0.99;
  auto skipped = [&] {
    double k = 0;
    for (const auto& s : sites) k += *s.sparsity * s.weights;
    return k;
  };
  while (skipped() < target * total - 1e-9) {
    Site* best = nullptr;
    double best_increase = INFINITY, best_next = 0;
    for (auto& s : sites) {
      const double now = *s.sparsity;
      if (now >= kMaxSiteSparsity) continue;
      const double next = std::min(kMaxSiteSparsity, now + step / s.weights);
      // Error added per weight skipped, so a site whose step is capped short
      // is compared fairly.
      const double increase = (s.stats->error_at(next) - s.stats->error_at(now)) / ((next - now) * s.weights);
      if (increase < best_increase) {
        best_increase = increase;
        best = &s;
        best_next = next;
      }
    }
    if (!best) break;
    // The last step lands exactly on the target.
    const double remaining = target * total - skipped();
    *best->sparsity = std::min(best_next, *best->sparsity + remaining / best->weights);
  }
  out.attn_in_threshold = st.attn_in.threshold(out.attn_in);
  out.attn_out_threshold = st.attn_out.threshold(out.attn_out);
  out.teal.ffn_in = st.ffn_in.threshold(out.ffn_in);
  out.teal.ffn_mid = st.ffn_mid.threshold(out.ffn_mid);
}

SparsityPlan plan_sparsity(const SparsitySpec& spec, const ActivationStats* stats, const LlamaModel& model,
                           const std::string& stats_path) {
  const auto& c = model.config();
  SparsityPlan plan;
  plan.spec = spec;
  plan.layers.resize(static_cast<size_t>(c.n_layers));
  if (spec.target <= 0) return plan;  // dense
  if (needs_calibration(spec.method)) {
    if (!stats) throw Error(fmt::format("--sparsity {}: needs activation statistics (--calib FILE from `ffn calibrate`)",
                                        sparsity_method_name(spec.method)));
    if (static_cast<int64_t>(stats->layers.size()) != c.n_layers)
      fail(stats_path, "layers", fmt::format("{} (the model's layer count)", c.n_layers),
           fmt::format("{}", stats->layers.size()));
    if (stats->d_model != c.dim) fail(stats_path, "d_model", fmt::format("{}", c.dim), fmt::format("{}", stats->d_model));
    if (stats->hidden != c.hidden_dim)
      fail(stats_path, "hidden", fmt::format("{}", c.hidden_dim), fmt::format("{}", stats->hidden));
  }
  for (size_t l = 0; l < plan.layers.size(); ++l) {
    LayerSparsityPlan& p = plan.layers[l];
    switch (spec.method) {
      case SparsityMethod::Teal:
        plan_teal_layer(stats->layers[l], model, spec.target, p);
        break;
      case SparsityMethod::Cats:
        p.gate_sparse = true;
        p.gate.kind = GateRule::Kind::Threshold;
        p.gate.threshold = stats->layers[l].gate_act.threshold(spec.target);
        break;
      case SparsityMethod::Chess:
      case SparsityMethod::ChessFfn: {
        const auto& st = stats->layers[l];
        p.gate_sparse = true;
        p.gate.kind = GateRule::Kind::ChannelThreshold;
        const float tau = st.chess_importance.threshold(spec.target);
        p.gate.channel_thresholds.resize(st.up_abs_mean.size());
        for (size_t i = 0; i < st.up_abs_mean.size(); ++i)
          p.gate.channel_thresholds[i] = st.up_abs_mean[i] > 0 ? tau / st.up_abs_mean[i] : INFINITY;
        if (spec.method == SparsityMethod::ChessFfn) break;
        p.attn_in = p.attn_out = spec.target;
        p.attn_q_only = true;
        p.attn_in_threshold = st.attn_in.threshold(spec.target);
        p.attn_out_threshold = st.attn_out.threshold(spec.target);
        break;
      }
      case SparsityMethod::StatTopK:
      case SparsityMethod::TopK:
        p.gate_sparse = true;
        p.gate.kind = spec.method == SparsityMethod::TopK ? GateRule::Kind::ExactTopK : GateRule::Kind::StatisticalTopK;
        p.gate.keep_fraction = 1.0 - spec.target;
        break;
    }
  }
  return plan;
}

namespace {

// A statistics file is GGUF or JSON (starts with '{'); anything else is text.
bool looks_like_stats(const std::string& path) {
  const std::string head = read_text_file_prefix(path, 64);
  if (head.rfind("GGUF", 0) == 0) return true;
  const auto p = head.find_first_not_of(" \t\r\n");
  return p != std::string::npos && head[p] == '{';
}

}  // namespace

SparsityPlan calibrated_plan(LlamaModel& model, const std::string& spec_text, const std::string& calib_path,
                             ThreadPool* pool, const Tokenizer* tokenizer, int64_t calib_tokens) {
  const SparsitySpec spec = parse_sparsity_spec(spec_text);
  std::optional<ActivationStats> stats;
  if (needs_calibration(spec.method) && spec.target > 0) {
    if (calib_path.empty())
      throw Error(fmt::format("--sparsity {}: needs --calib FILE (activation statistics from `ffn calibrate`, "
                              "or a text to calibrate on)",
                              spec_text));
    if (looks_like_stats(calib_path)) {
      stats = load_activation_stats(calib_path);
    } else {
      if (!tokenizer) throw Error(fmt::format("--calib {}: calibrating on a text needs the model's tokenizer", calib_path));
      const auto tokens = tokenizer->encode(read_text_file(calib_path));
      const int64_t ctx = std::min<int64_t>(256, model.config().context_length);
      const int64_t sampled = std::clamp<int64_t>((1 << 20) / model.config().hidden_dim, 64, 4096);
      stats = collect_activation_stats(model, tokens, tokenizer->bos(), ctx, calib_tokens, sampled,
                                       pool ? *pool : ThreadPool::global());
    }
  }
  return plan_sparsity(spec, stats ? &*stats : nullptr, model, calib_path);
}

std::unique_ptr<SparsityMeter> sparsify(LlamaModel& model, const std::string& spec_text,
                                        const std::string& calib_path, ThreadPool* pool, const Tokenizer* tokenizer,
                                        int64_t calib_tokens) {
  const SparsityPlan plan = calibrated_plan(model, spec_text, calib_path, pool, tokenizer, calib_tokens);
  return apply_sparsity(model, plan, pool);
}

}  // namespace ffn
