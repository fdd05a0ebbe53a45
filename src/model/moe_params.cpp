#include "model/moe_params.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "kernels/packed_quant.h"
#include "model/weights.h"

namespace ffn {

namespace {

const GgufValue* find_key(const ModelSource& src, const std::string& key) {
  for (const auto& [k, v] : src.extra_metadata)
    if (k == key) return &v;
  return nullptr;
}

std::optional<int64_t> get_count(const ModelSource& src, const std::string& key, int64_t lo, int64_t hi) {
  const GgufValue* v = find_key(src, key);
  if (!v) return std::nullopt;
  if (!v->is_integer()) fail(src.path, key, "an integer", v->to_display());
  const bool negative = v->type == GgufType::I8 || v->type == GgufType::I16 || v->type == GgufType::I32 ||
                        v->type == GgufType::I64;
  if ((negative && (v->i < lo || v->i > hi)) || (!negative && v->u > uint64_t(hi)) ||
      (!negative && int64_t(v->u) < lo))
    fail(src.path, key, fmt::format("an integer in {}..{}", lo, hi), v->to_display());
  return negative ? v->i : int64_t(v->u);
}

std::optional<std::string> get_string(const ModelSource& src, const std::string& key) {
  const GgufValue* v = find_key(src, key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::STRING) fail(src.path, key, "a string", gguf_type_name(v->type));
  return v->s;
}

std::optional<bool> get_bool(const ModelSource& src, const std::string& key) {
  const GgufValue* v = find_key(src, key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::BOOL) fail(src.path, key, "a bool", gguf_type_name(v->type));
  return v->u != 0;
}

void set_key(ModelSource& out, const std::string& key, GgufValue value) {
  std::erase_if(out.extra_metadata, [&](const auto& kv) { return kv.first == key; });
  out.extra_metadata.emplace_back(key, std::move(value));
}

std::string tensor_name(int64_t layer, const char* what) { return fmt::format("blk.{}.{}.weight", layer, what); }

}  // namespace

std::optional<MoeParams> read_moe_params(const ModelSource& src, const LlamaConfig& c) {
  const std::string a = src.arch + ".";
  const auto n_experts = get_count(src, a + "expert_count", 0, 1 << 16);
  if (!n_experts || *n_experts == 0) {
    for (int64_t l = 0; l < c.n_layers; ++l)
      if (src.find(tensor_name(l, "ffn_gate_inp")))
        fail(src.path, a + "expert_count", "a metadata key (the file has MoE tensor '" +
                                               tensor_name(l, "ffn_gate_inp") + "')", "none");
    return std::nullopt;
  }
  MoeParams p;
  p.n_experts = *n_experts;
  p.expert_hidden = get_count(src, a + "expert_feed_forward_length", 1, 1 << 20).value_or(c.hidden_dim);
  p.n_zero = get_count(src, "ffn.moe.zero_experts", 0, 1 << 16).value_or(0);
  p.n_copy = get_count(src, "ffn.moe.copy_experts", 0, 1 << 16).value_or(0);
  p.n_const = get_count(src, "ffn.moe.const_experts", 0, 1 << 16).value_or(0);
  const auto used = get_count(src, a + "expert_used_count", 1, p.n_routed());
  if (!used) fail(src.path, a + "expert_used_count", fmt::format("an integer in 1..{}", p.n_routed()), "none");
  p.routing.top_k = *used;
  if (const auto g = get_count(src, a + "expert_gating_func", 1, 2))
    p.routing.gating = *g == 2 ? MoeGating::Sigmoid : MoeGating::Softmax;
  if (const auto g = get_string(src, "ffn.moe.gating"))
    p.routing.gating = parse_moe_gating(*g, src.path + ": ffn.moe.gating");
  if (const auto o = get_string(src, "ffn.moe.order")) {
    p.routing.order = parse_moe_order(*o, src.path + ": ffn.moe.order");
    if (p.routing.order == MoeOrder::TopKThenSoftmax && p.routing.gating != MoeGating::Softmax)
      fail(src.path, "ffn.moe.order", "softmax-topk (topk-softmax needs softmax gating)", *o);
  }
  // llama.cpp's llama graph renormalises whatever the file says.
  p.routing.renormalize = get_bool(src, a + "expert_weights_norm").value_or(src.arch == "llama");
  return p;
}

void write_moe_params(ModelSource& out, const MoeParams& p) {
  const std::string a = out.arch + ".";
  auto u32 = [](int64_t v) { return GgufValue::of_u32(uint32_t(v)); };
  set_key(out, a + "expert_count", u32(p.n_experts));
  set_key(out, a + "expert_used_count", u32(p.routing.top_k));
  set_key(out, a + "expert_feed_forward_length", u32(p.expert_hidden));
  set_key(out, a + "expert_weights_norm", GgufValue::of_bool(p.routing.renormalize));
  if (p.routing.gating != MoeGating::Unit)
    set_key(out, a + "expert_gating_func", u32(p.routing.gating == MoeGating::Sigmoid ? 2 : 1));
  set_key(out, "ffn.moe.gating", GgufValue::of_string(moe_gating_name(p.routing.gating)));
  set_key(out, "ffn.moe.order", GgufValue::of_string(moe_order_name(p.routing.order)));
  set_key(out, "ffn.moe.zero_experts", u32(p.n_zero));
  set_key(out, "ffn.moe.copy_experts", u32(p.n_copy));
  set_key(out, "ffn.moe.const_experts", u32(p.n_const));
}

void erase_moe_params(ModelSource& out) {
  const std::string a = out.arch + ".expert_";
  std::erase_if(out.extra_metadata,
                [&](const auto& kv) { return kv.first.rfind(a, 0) == 0 || kv.first.rfind("ffn.moe.", 0) == 0; });
}

void set_moe_top_k(LlamaModel& model, int64_t k, const std::string& what) {
  bool any = false;
  for (auto& L : model.layers()) {
    auto* moe = dynamic_cast<MoeFfn*>(L.ffn.get());
    if (!moe) continue;
    any = true;
    const int64_t n = moe->weights().n_routed();
    if (k < 1 || k > n) fail(what, "value", fmt::format("1..{} (the routed experts of a layer)", n), std::to_string(k));
    moe->set_top_k(k);
  }
  if (!any) fail(what, "model", "a mixture-of-experts model", "a model without MoE layers");
}

int64_t moe_top_k(const LlamaModel& model) {
  for (const auto& L : model.layers())
    if (const auto* moe = dynamic_cast<const MoeFfn*>(L.ffn.get())) return moe->routing().top_k;
  return 0;
}

std::unique_ptr<MoeFfn> load_moe_layer(const ModelSource& src, int64_t l, const LlamaConfig& c, const MoeParams& p,
                                       MoeMeter* meter, ThreadPool* pack_pool) {
  auto name = [l](const char* what) { return tensor_name(l, what); };
  if (!src.find(name("ffn_gate_inp"))) return nullptr;
  const int64_t d = c.dim, E = p.n_experts, h = p.expert_hidden, N = p.n_routed();
  MoeWeights w;
  w.router = load_matrix(src, name("ffn_gate_inp"), N, d);
  const std::string bias = fmt::format("blk.{}.ffn_gate_inp.bias", l);
  if (src.find(bias)) w.router_bias = load_vector(src, bias, N);
  w.n_experts = E;
  w.expert_hidden = h;
  w.gate_exps = load_stacked_matrix(src, name("ffn_gate_exps"), E, h, d);
  w.up_exps = load_stacked_matrix(src, name("ffn_up_exps"), E, h, d);
  w.down_exps = load_stacked_matrix(src, name("ffn_down_exps"), E, d, h);
  w.n_zero = p.n_zero;
  w.n_copy = p.n_copy;
  w.n_const = p.n_const;
  if (p.n_const > 0) {
    w.const_vectors = load_floats(src, name("ffn_const_exps"), {uint64_t(p.n_const), uint64_t(d)});
    w.const_gates = load_floats(src, name("ffn_const_gate"), {uint64_t(p.n_const), 2, uint64_t(d)});
  }
  if (src.find(name("ffn_gate_res"))) {
    // G_l = Wr x + Wg G_{l-1}: the previous layer must route over as many
    // experts (every MoE layer of a file does) and exist.
    if (l == 0 || !src.find(tensor_name(l - 1, "ffn_gate_inp")))
      fail(src.path, name("ffn_gate_res"), "a gating residual on a MoE layer after another MoE layer",
           l == 0 ? "layer 0" : "a layer after a dense one");
    w.gating_residual = load_matrix(src, name("ffn_gate_res"), N, N);
  }
  if (const WeightTensor* sg = src.find(name("ffn_gate_shexp"))) {
    const int64_t sh = sg->shape.size() == 2 ? int64_t(std::min<uint64_t>(sg->shape[0], 1 << 20)) : 0;
    if (sh < 1) fail(src.path, "tensor '" + name("ffn_gate_shexp") + "' shape", fmt::format("[shared, {}]", d), sg->shape_string());
    WeightMatrix gate = load_matrix(src, name("ffn_gate_shexp"), sh, d), up = load_matrix(src, name("ffn_up_shexp"), sh, d),
                 down = load_matrix(src, name("ffn_down_shexp"), d, sh);
    if (pack_pool)
      for (WeightMatrix* m : {&gate, &up, &down}) pack_row_tiles(*m, pack_pool);
    w.shared.emplace(std::move(gate), std::move(up), std::move(down));
    if (src.find(name("ffn_gate_inp_shexp"))) w.shared_gate = load_vector(src, name("ffn_gate_inp_shexp"), d);
  } else if (src.find(name("ffn_gate_inp_shexp"))) {
    fail(src.path, name("ffn_gate_shexp"), "the shared expert that ffn_gate_inp_shexp gates", "none");
  }
  if (pack_pool)
    for (WeightMatrix* m : {&w.gate_exps, &w.up_exps, &w.down_exps}) pack_row_tiles(*m, pack_pool);
  return std::make_unique<MoeFfn>(std::move(w), p.routing, meter);
}

}  // namespace ffn
