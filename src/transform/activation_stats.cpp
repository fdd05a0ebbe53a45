#include "transform/activation_stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "io/gguf_file.h"
#include "transform/activation_stats_gguf.h"
#include "core/thread_pool.h"
#include "core/mapped_file.h"
#include "ffn/gated_ffn.h"
#include "io/gguf_writer.h"
#include "io/json_util.h"
#include "kernels/ops.h"
#include "model/llama_model.h"
#include "transform/calibration_run.h"

namespace ffn {

namespace {

double interpolate(const std::vector<float>& points, double at) {
  if (points.empty()) return 0.0;
  const double pos = std::clamp(at, 0.0, 1.0) * double(points.size() - 1);
  const size_t i = std::min(static_cast<size_t>(pos), points.size() - 1);
  if (i + 1 >= points.size()) return points.back();
  const double f = pos - double(i);
  return points[i] * (1 - f) + points[i + 1] * f;
}

std::vector<float> quantiles_of(std::vector<float> v) {
  std::vector<float> q(kQuantiles, 0.0f);
  if (v.empty()) return q;
  std::sort(v.begin(), v.end());
  for (int i = 0; i < kQuantiles; ++i) {
    const double pos = double(i) / (kQuantiles - 1) * double(v.size() - 1);
    const size_t k = static_cast<size_t>(pos);
    const double f = pos - double(k);
    q[i] = static_cast<float>(k + 1 < v.size() ? v[k] * (1 - f) + v[k + 1] * f : v[k]);
  }
  return q;
}

// sum_r W[r, j]^2 for every input column j.
void add_column_norms(const WeightMatrix& w, std::vector<double>& colsq) {
  colsq.resize(static_cast<size_t>(w.cols), 0.0);
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    read_row(w, r, row.data());
    for (int64_t j = 0; j < w.cols; ++j) colsq[j] += double(row[j]) * row[j];
  }
}

// TEAL's error curve from sampled rows of |x| and the column norms of the
// weights the site feeds.
std::vector<float> error_curve(const std::vector<float>& rows, int64_t width, const std::vector<double>& colsq) {
  std::vector<std::pair<float, double>> e;
  e.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const double x = rows[i];
    e.emplace_back(rows[i], x * x * colsq[i % static_cast<size_t>(width)]);
  }
  std::sort(e.begin(), e.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<double> cum(e.size() + 1, 0.0);
  for (size_t i = 0; i < e.size(); ++i) cum[i + 1] = cum[i] + e[i].second;
  std::vector<float> curve(kErrorPoints, 0.0f);
  const double total = cum.back();
  if (total <= 0) return curve;
  for (int i = 0; i < kErrorPoints; ++i) {
    const size_t k = static_cast<size_t>(std::llround(double(i) / (kErrorPoints - 1) * double(e.size())));
    curve[i] = static_cast<float>(cum[std::min(k, e.size())] / total);
  }
  return curve;
}

}  // namespace

float SiteStats::threshold(double sparsity) const {
  if (sparsity <= 0) return 0.0f;
  return static_cast<float>(interpolate(quantiles, sparsity));
}

double SiteStats::error_at(double sparsity) const { return interpolate(error, sparsity); }

ActivationCollector::ActivationCollector(const LlamaModel& model, int64_t max_sampled_tokens, uint64_t seed)
    : d_model_(model.config().dim), hidden_(model.config().hidden_dim),
      capacity_(std::max<int64_t>(1, max_sampled_tokens)), layers_(static_cast<size_t>(model.config().n_layers)),
      rng_(seed) {
  for (auto& L : layers_) L.up_abs_sum.assign(static_cast<size_t>(hidden_), 0.0);
}

void ActivationCollector::observe(int64_t layer, Site site, const float* data, int64_t n, int64_t width) {
  if (layer == 0 && site == Site::AttnIn) {
    // A new batch: decide once which tokens enter the reservoir (algorithm R),
    // so every site and layer samples the same tokens.
    slot_.assign(static_cast<size_t>(n), -1);
    for (int64_t t = 0; t < n; ++t, ++tokens_) {
      if (tokens_ < capacity_) {
        slot_[t] = tokens_;
      } else {
        const int64_t r = std::uniform_int_distribution<int64_t>(0, tokens_)(rng_);
        if (r < capacity_) slot_[t] = r;
      }
    }
  }
  if (layer < 0 || layer >= static_cast<int64_t>(layers_.size()) || static_cast<int64_t>(slot_.size()) != n) return;
  LayerSamples& L = layers_[layer];
  if (site == Site::FfnUp) {
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < width; ++j) L.up_abs_sum[j] += std::fabs(data[t * width + j]);
    return;
  }
  auto& rows = L.rows[static_cast<int>(site)];
  rows.resize(static_cast<size_t>(std::min(tokens_, capacity_) * width));
  for (int64_t t = 0; t < n; ++t) {
    if (slot_[t] < 0) continue;
    float* dst = rows.data() + slot_[t] * width;
    const float* src = data + t * width;
    if (site == Site::FfnGate) {
      // The same silu as GateSparseFfn::select, whose values the thresholds meet.
      silu(src, dst, width);
      for (int64_t j = 0; j < width; ++j) dst[j] = std::fabs(dst[j]);
    } else {
      for (int64_t j = 0; j < width; ++j) dst[j] = std::fabs(src[j]);
    }
  }
}

ActivationStats ActivationCollector::finish(const LlamaModel& model) const {
  ActivationStats out;
  out.tokens = tokens_;
  out.sampled_tokens = std::min(tokens_, capacity_);
  out.d_model = d_model_;
  out.hidden = hidden_;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const LayerSamples& S = layers_[l];
    const LlamaLayer& ML = model.layers()[l];
    const auto* gated = dynamic_cast<const GatedFfn*>(ML.ffn.get());
    if (!gated) throw Error(fmt::format("calibration needs the dense gated FFN in layer {}", l));
    auto rows = [&](Site s) -> const std::vector<float>& { return S.rows[static_cast<int>(s)]; };
    LayerActivationStats st;
    std::vector<double> cn_attn_in, cn_attn_out, cn_ffn_in, cn_ffn_mid;
    add_column_norms(ML.wq, cn_attn_in);
    add_column_norms(ML.wk, cn_attn_in);
    add_column_norms(ML.wv, cn_attn_in);
    add_column_norms(ML.wo, cn_attn_out);
    add_column_norms(gated->gate(), cn_ffn_in);
    add_column_norms(gated->up(), cn_ffn_in);
    add_column_norms(gated->down(), cn_ffn_mid);
    auto site = [&](Site s, int64_t width, const std::vector<double>& cn) {
      SiteStats ss;
      ss.quantiles = quantiles_of(rows(s));
      ss.error = error_curve(rows(s), width, cn);
      return ss;
    };
    st.attn_in = site(Site::AttnIn, d_model_, cn_attn_in);
    st.attn_out = site(Site::AttnOut, d_model_, cn_attn_out);
    st.ffn_in = site(Site::FfnIn, d_model_, cn_ffn_in);
    st.ffn_mid = site(Site::FfnMid, hidden_, cn_ffn_mid);
    st.gate_act.quantiles = quantiles_of(rows(Site::FfnGate));
    st.up_abs_mean.resize(static_cast<size_t>(hidden_));
    for (int64_t j = 0; j < hidden_; ++j)
      st.up_abs_mean[j] = static_cast<float>(tokens_ > 0 ? S.up_abs_sum[j] / double(tokens_) : 0.0);
    std::vector<float> importance = rows(Site::FfnGate);
    for (size_t i = 0; i < importance.size(); ++i) importance[i] *= st.up_abs_mean[i % static_cast<size_t>(hidden_)];
    st.chess_importance.quantiles = quantiles_of(std::move(importance));
    const float median = st.ffn_mid.threshold(0.5);
    const auto& mid = rows(Site::FfnMid);
    const int64_t n_rows = static_cast<int64_t>(mid.size()) / hidden_;
    st.firing_rate.assign(static_cast<size_t>(hidden_), 0.0f);
    for (int64_t t = 0; t < n_rows; ++t)
      for (int64_t j = 0; j < hidden_; ++j) st.firing_rate[j] += mid[t * hidden_ + j] > median;
    for (auto& f : st.firing_rate) f = n_rows > 0 ? f / float(n_rows) : 0.0f;
    out.layers.push_back(std::move(st));
  }
  return out;
}

ActivationStats collect_activation_stats(LlamaModel& model, const std::vector<int32_t>& tokens, int32_t bos,
                                         int64_t ctx, int64_t max_tokens, int64_t max_sampled_tokens, ThreadPool& pool,
                                         const std::function<void(int64_t, int64_t)>& progress) {
  ActivationCollector collector(model, max_sampled_tokens);
  run_calibration(model, collector, tokens, bos, ctx, max_tokens, pool, [&](int64_t done, int64_t total, int64_t) {
    if (progress) progress(done, total);
  });
  return collector.finish(model);
}

namespace {

json site_json(const SiteStats& s) {
  json j;
  j["quantiles"] = s.quantiles;
  if (!s.error.empty()) j["error"] = s.error;
  return j;
}

// A JSON array of numbers as floats. Values a float cannot hold are
// rejected here (the cast would be undefined); lengths and ranges are
// validate_activation_stats'.
std::vector<float> json_floats(const json& j, const char* key, const std::string& where) {
  const auto v = json_get<std::vector<double>>(j, key, where);
  std::vector<float> out;
  out.reserve(v.size());
  for (double d : v) {
    if (!std::isfinite(d) || std::abs(d) > 3.0e38) fail(where, key, "finite values in float range", fmt::format("{}", d));
    out.push_back(static_cast<float>(d));
  }
  return out;
}

SiteStats site_from_json(const json& layer, const char* key, bool with_error, const std::string& where) {
  if (!layer.contains(key)) fail(where, key, "a JSON field", "none");
  const json& j = layer.at(key);
  const std::string w = where + "." + key;
  SiteStats s;
  s.quantiles = json_floats(j, "quantiles", w);
  if (with_error) s.error = json_floats(j, "error", w);
  return s;
}

}  // namespace

void save_activation_stats(const ActivationStats& st, const std::string& path) {
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0) {
    save_activation_stats_gguf(st, path);
    return;
  }
  json j;
  j["format"] = "ffn.activation_stats";
  j["version"] = 1;
  j["model"] = st.model;
  j["text"] = st.text;
  j["tokens"] = st.tokens;
  j["sampled_tokens"] = st.sampled_tokens;
  j["d_model"] = st.d_model;
  j["hidden"] = st.hidden;
  json layers = json::array();
  for (const auto& L : st.layers) {
    json l;
    l["attn_in"] = site_json(L.attn_in);
    l["attn_out"] = site_json(L.attn_out);
    l["ffn_in"] = site_json(L.ffn_in);
    l["ffn_mid"] = site_json(L.ffn_mid);
    l["gate_act"] = site_json(L.gate_act);
    l["chess_importance"] = site_json(L.chess_importance);
    l["up_abs_mean"] = L.up_abs_mean;
    l["firing_rate"] = L.firing_rate;
    layers.push_back(std::move(l));
  }
  j["layers"] = std::move(layers);
  const std::string text = j.dump();
  write_file_atomically(path, [&](std::FILE* f) {
    if (std::fwrite(text.data(), 1, text.size(), f) != text.size()) throw Error(path + ": write failed");
  });
}

ActivationStats load_activation_stats(const std::string& path) {
  if (read_text_file_prefix(path, 4) == "GGUF") return activation_stats_from_gguf(GgufFile(path));
  return parse_activation_stats(read_text_file(path), path);
}

void validate_activation_stats(const ActivationStats& st, const std::string& path) {
  for (size_t l = 0; l < st.layers.size(); ++l) {
    const LayerActivationStats& L = st.layers[l];
    const std::string where = fmt::format("{}: layers[{}]", path, l);
    auto check = [&](const std::string& field, const std::vector<float>& v, size_t count, float hi) {
      if (v.size() != count) fail(where, field, fmt::format("{} values", count), std::to_string(v.size()));
      for (float x : v)
        if (!(x >= 0.0f && x <= hi)) fail(where, field, fmt::format("values in [0, {:g}]", hi), fmt::format("{}", x));
    };
    const float kMax = 3.0e38f;
    const std::pair<const char*, const SiteStats*> sites[] = {
        {"attn_in", &L.attn_in}, {"attn_out", &L.attn_out}, {"ffn_in", &L.ffn_in}, {"ffn_mid", &L.ffn_mid},
        {"gate_act", &L.gate_act}, {"chess_importance", &L.chess_importance}};
    for (const auto& [name, site] : sites) {
      const std::string q = std::string(name) + ".quantiles";
      check(q, site->quantiles, kQuantiles, kMax);
      if (!std::is_sorted(site->quantiles.begin(), site->quantiles.end())) fail(where, q, "ascending values", "unsorted");
      // Error curves belong to the linear layers' inputs only.
      const bool linear_input = site != &L.gate_act && site != &L.chess_importance;
      if (linear_input) check(std::string(name) + ".error", site->error, kErrorPoints, kMax);
    }
    check("up_abs_mean", L.up_abs_mean, size_t(st.hidden), kMax);
    check("firing_rate", L.firing_rate, size_t(st.hidden), 1.0f);
  }
}

ActivationStats parse_activation_stats(const std::string& text, const std::string& path) {
  const json j = parse_json(text, path);
  if (json_get<std::string>(j, "format", path) != "ffn.activation_stats")
    fail(path, "format", "\"ffn.activation_stats\"", j.at("format").dump());
  if (json_get<int64_t>(j, "version", path) != 1) fail(path, "version", "1", j.at("version").dump());
  ActivationStats st;
  st.model = json_get<std::string>(j, "model", path);
  st.text = json_get<std::string>(j, "text", path);
  st.tokens = json_get<int64_t>(j, "tokens", path);
  st.sampled_tokens = json_get<int64_t>(j, "sampled_tokens", path);
  st.d_model = json_get<int64_t>(j, "d_model", path);
  st.hidden = json_get<int64_t>(j, "hidden", path);
  if (st.d_model <= 0 || st.d_model > (1 << 20)) fail(path, "d_model", "1..2^20", fmt::format("{}", st.d_model));
  if (st.hidden <= 0 || st.hidden > (1 << 22)) fail(path, "hidden", "1..2^22", fmt::format("{}", st.hidden));
  if (!j.contains("layers") || !j.at("layers").is_array()) fail(path, "layers", "an array", "none");
  const json& layers = j.at("layers");
  for (size_t l = 0; l < layers.size(); ++l) {
    const std::string w = fmt::format("{}: layers[{}]", path, l);
    const json& lj = layers[l];
    if (!lj.is_object()) fail(w, "layer", "an object", lj.dump().substr(0, 40));
    LayerActivationStats L;
    L.attn_in = site_from_json(lj, "attn_in", true, w);
    L.attn_out = site_from_json(lj, "attn_out", true, w);
    L.ffn_in = site_from_json(lj, "ffn_in", true, w);
    L.ffn_mid = site_from_json(lj, "ffn_mid", true, w);
    L.gate_act = site_from_json(lj, "gate_act", false, w);
    L.chess_importance = site_from_json(lj, "chess_importance", false, w);
    L.up_abs_mean = json_floats(lj, "up_abs_mean", w);
    L.firing_rate = json_floats(lj, "firing_rate", w);
    st.layers.push_back(std::move(L));
  }
  validate_activation_stats(st, path);
  return st;
}

}  // namespace ffn
