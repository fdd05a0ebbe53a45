#include "transform/sparse_file.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "model/llama_config.h"
#include "model/weights.h"

namespace ffn {

namespace {

GgufValue f32_array(const std::vector<float>& v) {
  std::vector<GgufValue> items;
  items.reserve(v.size());
  for (float f : v) items.push_back(GgufValue::of_f32(f));
  return GgufValue::of_array(GgufType::F32, std::move(items));
}

std::string gate_rule_name(const LayerSparsityPlan& p) { return p.gate_sparse ? GateRule::name(p.gate.kind) : "none"; }

}  // namespace

ModelSource with_sparsity_plan(const ModelSource& src, const SparsityPlan& plan, ThreadPool* pool) {
  ModelSource out = src.without_tensors();
  std::erase_if(out.extra_metadata, [](const auto& kv) { return kv.first.rfind(kSparsityKeyPrefix, 0) == 0; });
  std::set<std::string> to_transpose;
  for (size_t l = 0; l < plan.layers.size(); ++l)
    for (auto& n : transposed_matrices(plan.layers[l], l)) to_transpose.insert(n);
  for (const WeightTensor& t : src.tensors) {
    if (!to_transpose.count(t.name)) {
      out.add(t);
      continue;
    }
    const WeightMatrix w = load_matrix(src, t.name, int64_t(t.rows()), int64_t(t.cols()));
    WeightMatrix wt = transposed(w, pool);
    WeightTensor tt;
    tt.name = transposed_tensor_name(t.name);
    tt.type = wt.type;
    tt.shape = {uint64_t(wt.rows), uint64_t(wt.cols)};
    tt.data = wt.data;
    tt.bytes = wt.bytes();
    out.owners.push_back(wt.owned);
    out.add(std::move(tt));
  }
  const size_t n = plan.layers.size();
  std::vector<float> attn_in(n), attn_out(n), ffn_in(n), ffn_mid(n), gate_threshold(n), channel;
  std::string rule = "none";
  double keep = 1.0;
  bool q_only = false;
  for (size_t l = 0; l < n; ++l) {
    const auto& p = plan.layers[l];
    attn_in[l] = p.attn_in_threshold;
    attn_out[l] = p.attn_out_threshold;
    ffn_in[l] = p.teal.ffn_in;
    ffn_mid[l] = p.teal.ffn_mid;
    gate_threshold[l] = p.gate.threshold;
    q_only = q_only || p.attn_q_only;
    if (p.gate_sparse) {
      rule = gate_rule_name(p);
      keep = p.gate.keep_fraction;
      channel.insert(channel.end(), p.gate.channel_thresholds.begin(), p.gate.channel_thresholds.end());
    }
  }
  auto set = [&](const char* key, GgufValue v) { out.extra_metadata.emplace_back(std::string(kSparsityKeyPrefix) + key, std::move(v)); };
  set("method", GgufValue::of_string(sparsity_method_name(plan.spec.method)));
  set("target", GgufValue::of_f32(float(plan.spec.target)));
  set("attn_in_threshold", f32_array(attn_in));
  set("attn_out_threshold", f32_array(attn_out));
  set("ffn_in_threshold", f32_array(ffn_in));
  set("ffn_mid_threshold", f32_array(ffn_mid));
  set("attn_q_only", GgufValue::of_bool(q_only));
  set("gate_rule", GgufValue::of_string(rule));
  set("gate_threshold", f32_array(gate_threshold));
  set("keep_fraction", GgufValue::of_f32(float(keep)));
  if (!channel.empty()) set("channel_thresholds", f32_array(channel));
  return out;
}

}  // namespace ffn
